//! The overview of more monitors than a page can show, from the real `isdown serve` over HTTP:
//! above 500 monitors `/` counts the monitors in each state and lists only the failing ones
//! (each linking to its own page), while `/api/v1/status` still lists every monitor.

mod support;

use std::time::Duration;

use support::*;

const KEY: &str = "sk-test-Zx9CvBn3MqWe5RtYu7Io";
/// One more than the overview lists in full (`web::summary::OVERVIEW_ROWS_MAX`).
const MONITORS: usize = 501;
/// Every tenth monitor's provider answers 503: p000, p010, …, p500.
const FAILING: usize = 51;

fn failing(n: usize) -> bool {
    n.is_multiple_of(10)
}

#[test]
fn above_500_monitors_the_overview_counts_them_and_lists_only_the_failing_ones() {
    let ok = mock("kimi", "ok");
    let down = mock("kimi", "unavailable");
    let mut text =
        String::from("[monitor]\nconfirm_after = \"300ms\"\ninterval = \"5s\"\ntimeout = \"4s\"\n");
    for n in 0..MONITORS {
        let mock = if failing(n) { &down } else { &ok };
        text.push_str(&format!(
            "[providers.p{n:03}]\nbase_url = \"{}\"\napi_key_env = \"KEY\"\n\
             probe_model = \"kimi-k2.6\"\n\
             [[monitors]]\nprovider = \"p{n:03}\"\nprobes = [\"chat\"]\n",
            mock.v1()
        ));
    }
    let config = config(&text);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&config.path, data.path(), &[("KEY", KEY)]);

    let counted = |html: &str| {
        html.contains(&format!("</span>{FAILING} Major outage</li>"))
            && html.contains(&format!("</span>{} Operational</li>", MONITORS - FAILING))
    };
    let html = eventually(
        Duration::from_secs(60),
        "every monitor probed, the failing ones down",
        || {
            let html = serve.get("/");
            counted(&html).then_some(html)
        },
    );
    assert!(html.contains(&format!("{MONITORS} monitors</h1>")));
    assert_eq!(html.matches("<li class=\"row\"").count(), FAILING);
    for n in 0..MONITORS {
        let id = format!("p{n:03}-chat");
        let listed = html.contains(&format!("<a href=\"/monitors/{id}\">"));
        assert_eq!(listed, failing(n), "{id} listed: {listed}");
    }
    assert!(html.contains(&format!(
        "… and {} more providers ({} monitors) with none failing.",
        MONITORS - FAILING,
        MONITORS - FAILING
    )));

    // A monitor that is up, not listed, still has its own page; the JSON lists everyone.
    let page = serve.get("/monitors/p001-chat");
    assert!(page.contains("Operational"), "{page}");
    let status = serve.json("/api/v1/status");
    assert_eq!(status["monitors"].as_array().unwrap().len(), MONITORS);
}
