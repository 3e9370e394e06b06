//! Uploads to the Files API are streamed into the database: an upload over the Batch API's
//! 200 MB, sent in chunks with no announced length, is refused with 413 while it streams, nothing
//! of it is kept, and the real `isdown serve` process never holds it whole (its peak RSS stays
//! far below the upload's size).

mod support;

use std::io::{Read, Write};

use support::*;

const KEY: &str = "gw-upload-key-3Rt6";
/// 3,200 lines of 64 kB: past 200 MB near the end.
const LINE_BYTES: usize = 64_000;
const LINES: usize = 3_200;

#[test]
fn a_chunked_upload_over_200_mb_is_refused_with_413_and_never_held_whole() {
    let mock = Mock::start("openai", "ok");
    let config = config(&format!(
        "{}[[monitors]]\nprovider = \"a\"\ninterval = \"1h\"\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n",
        provider_toml("a", &mock.v1(), "openai", "KEY_A"),
    ));
    let serve = Serve::start(
        &config.path,
        &config.dir.path().join("data"),
        &[("GW_KEY", KEY), ("KEY_A", "sk-upstream-a-Qw8ErTy2UiOp")],
    );
    let host = serve.url.strip_prefix("http://").unwrap().to_owned();
    let mut socket = std::net::TcpStream::connect(&host).unwrap();
    let boundary = "isdownTestBoundary";
    write!(
        socket,
        "POST /v1/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut chunk = |bytes: &[u8]| {
        write!(socket, "{:x}\r\n", bytes.len()).unwrap();
        socket.write_all(bytes).unwrap();
        socket.write_all(b"\r\n").unwrap();
    };
    chunk(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut line = vec![b'x'; LINE_BYTES];
    line.push(b'\n');
    for _ in 0..LINES {
        chunk(&line);
    }
    chunk(format!("\r\n--{boundary}--\r\n").as_bytes());
    socket.write_all(b"0\r\n\r\n").unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap_or("");
    assert_eq!(status, "413", "{}", &response[..response.len().min(500)]);
    assert!(response.contains("200 MB"), "{response}");

    let (status, files) = request(
        "GET",
        &format!("{}/v1/files", serve.url),
        "",
        &[("Authorization", &format!("Bearer {KEY}"))],
    );
    assert_eq!(status, 200, "{files}");
    let files: serde_json::Value = serde_json::from_str(&files).unwrap();
    assert_eq!(
        files["data"],
        serde_json::json!([]),
        "nothing of the upload was kept"
    );

    let peak = peak_rss(serve.child.id());
    assert!(
        peak < 100 * 1024 * 1024,
        "serve's peak RSS was {} MiB for a {} MB upload",
        peak / (1024 * 1024),
        LINES * LINE_BYTES / 1_000_000
    );
}

/// VmHWM of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}
