//! Routes, targets and client keys reload without a restart: new requests use the new table,
//! requests in flight finish on the one they started with, a target in both tables keeps its
//! breaker, and a file that does not load is refused with its position while the running table
//! stays. The gateway runs in-process on paused time; the last test drives the library server's
//! real reload channel against a config file.

mod support;

use std::time::Duration;

use isdown::config::Config;
use isdown::server::Server;
use support::gateway::*;
use support::mock_async;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A safety net for a broken build, not a bound under test: every wait below ends on an event.
const HANG_GUARD: Duration = Duration::from_secs(60);

const SHORT_REQUESTS: &str = "[gateway.timeouts]\nrequest = \"10s\"\n";

#[tokio::test(start_paused = true)]
async fn new_requests_take_the_reloaded_route_while_one_in_flight_finishes_on_the_old_table() {
    let kimi = mock_async("openai", "hang_chat").await;
    let deepseek = mock_async("openai", "ok").await;
    let glm = mock_async("openai", "ok").await;
    let before = format!(
        "{}{}{}{}{GATEWAY}{SHORT_REQUESTS}",
        provider("kimi", &kimi),
        provider("deepseek", &deepseek),
        provider("glm", &glm),
        route(&["kimi", "deepseek"])
    );
    let gw = Gw::start(&before).await;
    let in_flight = {
        let url = gw.url.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(CLIENT_KEY)
                .json(&ask(false))
                .send()
                .await
                .unwrap();
            let provider = header(&response, "x-isdown-provider");
            (response.status().as_u16(), provider)
        })
    };
    // The request now waits on the hung first target.
    kimi.received(1).await;

    // `deepseek` is gone from the new file altogether; `agent` now goes to `glm`.
    let after = format!(
        "{}{}{}{GATEWAY}{SHORT_REQUESTS}",
        provider("kimi", &kimi),
        provider("glm", &glm),
        route(&["glm"])
    );
    gw.gateway.reload(&config(&after).gateway).unwrap();

    let fresh = gw.chat(ask(false)).await;
    assert_eq!(fresh.status(), 200);
    assert_eq!(header(&fresh, "x-isdown-provider"), "glm");

    // The request from before the reload times out on `kimi` and fails over along its own
    // route, to the target the new table no longer has.
    let (status, provider) = in_flight.await.unwrap();
    assert_eq!((status, provider.as_str()), (200, "deepseek"));
    assert_eq!(chats(&deepseek).len(), 1);
    assert_eq!(chats(&glm).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_target_in_both_tables_keeps_its_breaker_across_a_reload() {
    let kimi = mock_async("openai", "hang_chat").await;
    let deepseek = mock_async("openai", "ok").await;
    let config_text = |extra: &str| {
        format!(
            "{}{}{}{GATEWAY}{SHORT_REQUESTS}{extra}",
            provider("kimi", &kimi),
            provider("deepseek", &deepseek),
            route(&["kimi", "deepseek"])
        )
    };
    let gw = Gw::start(&config_text("")).await;
    // One timeout ejects `kimi`.
    let first = gw.chat(ask(false)).await;
    assert_eq!(header(&first, "x-isdown-provider"), "deepseek");
    assert_eq!(header(&first, "x-isdown-attempts"), "2");

    gw.gateway
        .reload(&config(&config_text("connect = \"4s\"\n")).gateway)
        .unwrap();

    // Still ejected after the reload: the next request goes straight to `deepseek`.
    let second = gw.chat(ask(false)).await;
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-isdown-provider"), "deepseek");
    assert_eq!(header(&second, "x-isdown-attempts"), "1");
}

#[tokio::test(start_paused = true)]
async fn a_reload_adds_a_client_key_and_drops_a_removed_one() {
    let kimi = mock_async("openai", "ok").await;
    let keys = |vars: &str| {
        format!(
            "{}{}[gateway]\nclient_keys_env = [{vars}]\n",
            provider("kimi", &kimi),
            route(&["kimi"])
        )
    };
    let gw = Gw::start(&keys("\"GW_KEY\"")).await;
    assert_eq!(
        gw.chat_as(CLIENT_KEY_2, ask(false), &[]).await.status(),
        401
    );

    gw.gateway
        .reload(&config(&keys("\"GW_KEY2\"")).gateway)
        .unwrap();

    assert_eq!(
        gw.chat_as(CLIENT_KEY_2, ask(false), &[]).await.status(),
        200
    );
    assert_eq!(gw.chat_as(CLIENT_KEY, ask(false), &[]).await.status(), 401);
}

#[tokio::test]
async fn the_server_reloads_routes_from_its_file_and_refuses_a_bad_one_keeping_the_old_table() {
    let kimi = mock_async("openai", "ok").await;
    let deepseek = mock_async("openai", "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("isdown.toml");
    let providers = format!(
        "{}{}",
        provider("kimi", &kimi),
        provider("deepseek", &deepseek)
    );
    // A reload reads the process environment, where no test key is set: the open loopback
    // gateway needs none (and the mocks check none).
    const OPEN: &str = "[gateway]\nopen_on_localhost = true\n";
    std::fs::write(&file, format!("{providers}{}{OPEN}", route(&["kimi"]))).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut config = Config::from_toml(&text, "isdown.toml", &env).unwrap();
    config.source = Some(file.clone());
    config.serve.data = dir.path().join("data");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(config, listener).await.unwrap();
    let url = format!("http://{}/v1/chat/completions", server.addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let (reload, reloads) = mpsc::channel(1);
    let serving = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        reloads,
    ));
    let client = reqwest::Client::new();
    let served_by = || async {
        let response = client.post(&url).json(&ask(false)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        header(&response, "x-isdown-provider")
    };
    let ask_reload = || async {
        let (reply, outcome) = oneshot::channel();
        reload.send(reply).await.unwrap();
        outcome.await.unwrap()
    };
    assert_eq!(served_by().await, "kimi");

    std::fs::write(&file, format!("{providers}{}{OPEN}", route(&["deepseek"]))).unwrap();
    ask_reload().await.unwrap();
    assert_eq!(served_by().await, "deepseek");

    // The error a start-up would print (file and line), and the running table stays.
    std::fs::write(&file, format!("{providers}{}{OPEN}", route(&["nobody"]))).unwrap();
    let refused = ask_reload().await.unwrap_err();
    assert!(refused.contains("isdown.toml:"), "{refused}");
    assert!(refused.contains("unknown provider \"nobody\""), "{refused}");
    assert_eq!(served_by().await, "deepseek");

    stop.send(()).unwrap();
    tokio::time::timeout(HANG_GUARD, serving)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
}
