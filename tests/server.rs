//! The library server (`isdown::server`) in-process, as `cli/serve.rs` and the demo use it: a
//! bound listener in, a shutdown future and a reload channel in, incidents and alerts out as
//! events — no child process, no log scraping.

mod support;

use std::time::Duration;

use isdown::alert::AlertEvent;
use isdown::config::Config;
use isdown::mock::{MockServer, Scenario};
use isdown::monitor::service::MonitorEvent;
use isdown::server::Server;
use support::gateway::env;
use support::mock_async;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A safety net for a broken build, not a bound under test: every wait below ends on an event.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn config_text(kimi: &MockServer, deepseek: &MockServer, channel: &str) -> String {
    format!(
        "[monitor]\ninterval = \"1s\"\nconfirm_after = \"200ms\"\ntimeout = \"1s\"\n\
         [alerting]\ngroup_window = \"1s\"\n\
         [alerts.{channel}]\nkind = \"console\"\n\
         [providers.kimi]\nbase_url = \"{}/v1\"\napi_key_env = \"KEY_KIMI\"\n\
         [providers.deepseek]\nbase_url = \"{}/v1\"\napi_key_env = \"KEY_DEEPSEEK\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n",
        kimi.url(),
        deepseek.url()
    )
}

async fn next<T>(events: &mut broadcast::Receiver<T>, mut pick: impl FnMut(&T) -> bool) -> T
where
    T: Clone,
{
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let event = events.recv().await.expect("the server is running");
            if pick(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event arrived")
}

#[tokio::test]
async fn an_in_process_server_reports_incidents_and_alerts_reloads_and_stops_on_request() {
    let kimi = mock_async("kimi", "ok").await;
    let deepseek = mock_async("deepseek", "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("isdown.toml");
    std::fs::write(&file, config_text(&kimi, &deepseek, "first")).unwrap();
    // Keys come from the test's own lookup, not the process environment; a reload reads the
    // file again from `source`.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut config = Config::from_toml(&text, "isdown.toml", &env).unwrap();
    config.source = Some(file.clone());
    config.serve.data = dir.path().join("data");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(config, listener).await.unwrap();
    let base = format!("http://{}", server.addr());
    let mut incidents = server.subscribe();
    let mut alerts = server.subscribe_alerts();
    let (stop, stopped) = oneshot::channel::<()>();
    let (reload, reloads) = mpsc::channel(1);
    let serving = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        reloads,
    ));

    kimi.set_scenario(Scenario::Unavailable);
    let opened = next(
        &mut incidents,
        |e| matches!(e, MonitorEvent::IncidentOpened { monitor, .. } if monitor == "kimi-chat"),
    )
    .await;
    let MonitorEvent::IncidentOpened { id, .. } = opened else {
        unreachable!("picked an opened event")
    };
    let alert = next(&mut alerts, |d| d.message.event == AlertEvent::Opened).await;
    assert_eq!(alert.channel, "first");
    assert!(
        alert.message.title.contains("Kimi"),
        "{}",
        alert.message.title
    );
    let open: serde_json::Value = reqwest::get(format!("{base}/api/v1/incidents?state=open"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["incidents"][0]["id"], id);

    // A broken file is refused with its position; the running config stays.
    std::fs::write(&file, "[monitor]\ninterval = 5\n").unwrap();
    let (reply, outcome) = oneshot::channel();
    reload.send(reply).await.unwrap();
    let refused = outcome.await.unwrap().unwrap_err();
    assert!(refused.contains("isdown.toml:2"), "{refused}");

    kimi.set_scenario(Scenario::Ok);
    next(
        &mut incidents,
        |e| matches!(e, MonitorEvent::IncidentClosed { id: closed, .. } if *closed == id),
    )
    .await;

    stop.send(()).unwrap();
    tokio::time::timeout(HANG_GUARD, serving)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
}
