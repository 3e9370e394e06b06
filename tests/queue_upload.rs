//! Uploads to the Files API are streamed into the database: an upload over the Batch API's
//! 200 MB, sent in chunks with no announced length, is refused with 413 while it streams, nothing
//! of it is kept, and the real `isdown serve` process never holds it whole (its peak RSS stays
//! far below the upload's size).

mod support;

use bytes::Bytes;
use support::*;

const KEY: &str = "gw-upload-key-3Rt6";
/// 3,200 lines of 64 kB: past 200 MB near the end.
const LINE_BYTES: usize = 64_000;
const LINES: usize = 3_200;

#[test]
fn a_chunked_upload_over_200_mb_is_refused_with_413_and_never_held_whole() {
    let mock = mock("openai", "ok");
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
    // A stream of unknown length: reqwest sends it chunked, with no Content-Length to refuse
    // it by before it arrives.
    let boundary = "isdownTestBoundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\
         Content-Type: application/jsonl\r\n\r\n"
    );
    let mut line = vec![b'x'; LINE_BYTES];
    line.push(b'\n');
    let line = Bytes::from(line);
    let parts = std::iter::once(Bytes::from(head))
        .chain(std::iter::repeat_n(line, LINES))
        .chain(std::iter::once(Bytes::from(format!(
            "\r\n--{boundary}--\r\n"
        ))))
        .map(Ok::<_, std::io::Error>);
    let response = send(
        client()
            .post(format!("{}/v1/files", serve.url))
            .bearer_auth(KEY)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                parts,
            ))),
    );
    let text = response.text();
    assert_eq!(response.status, 413, "{}", &text[..text.len().min(500)]);
    assert!(text.contains("200 MB"), "{text}");

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
