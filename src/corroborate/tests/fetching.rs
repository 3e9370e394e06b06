//! Reading sources over real HTTP from servers on 127.0.0.1: conditional GETs, redirects
//! followed within bounds, and every way a source can misbehave becoming a reason. Then the
//! one-shot gathering of `check` and the poller of `serve` end to end against such a server.
//! The tests that meet a source which never answers run on paused time: the deadline passes in
//! tokio time, once nothing else can happen, not in the machine's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{T0, or_endpoints, sp_incident, sp_summary};
use crate::corroborate::fetch::{Deadline, FetchError, Fetched, Fetcher, MAX_BODY, Validators};
use crate::corroborate::gather::gather;
use crate::corroborate::poller::{self, Deps};
use crate::corroborate::statuspage::Indicator;
use crate::corroborate::view::SourcesView;
use crate::corroborate::{
    AggregatorSource, CommunityFeed, OfficialSource, ProviderSources, Reading, Settings,
};
use crate::store::sqlite::SqliteStore;
use crate::store::{NewIncident, Store};
use crate::time::{Clock, MINUTE_MS, rfc3339};
use crate::verdict::Verdict;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn misbehaving() -> Router {
    Router::new()
        .route(
            "/ok",
            get(|headers: HeaderMap| async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v == "\"v1\"")
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (header::ETAG, "\"v1\""),
                        (header::LAST_MODIFIED, "Fri, 19 Jun 2026 04:50:00 GMT"),
                    ],
                    "{\"ok\":true}",
                )
                    .into_response()
            }),
        )
        .route("/hop", get(|| async { Redirect::permanent("/ok") }))
        .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
        .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
        .route(
            "/chain/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    Redirect::temporary(&format!("/chain/{}", n + 1))
                },
            ),
        )
        .route(
            "/ftp",
            get(|| async { Redirect::temporary("ftp://example.com/x") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/limited",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "120")],
                    "slow down",
                )
            }),
        )
        .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route("/big", get(|| async { "x".repeat(MAX_BODY + 1) }))
        .route(
            "/big-stream",
            get(|| async {
                let chunks = (0..(MAX_BODY / 65_536 + 2))
                    .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 65_536])));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

#[tokio::test]
async fn a_conditional_get_is_answered_not_modified() {
    let base = serve(misbehaving()).await;
    let fetcher = Fetcher::new().unwrap();
    let url = format!("{base}/ok").parse().unwrap();
    let Fetched::Body { bytes, validators } = fetcher
        .get(&url, &Validators::default(), soon())
        .await
        .unwrap()
    else {
        panic!("a body first");
    };
    assert_eq!(&bytes[..], b"{\"ok\":true}");
    assert_eq!(validators.etag.as_ref().unwrap(), "\"v1\"");
    assert!(validators.last_modified.is_some());
    assert_eq!(
        fetcher.get(&url, &validators, soon()).await.unwrap(),
        Fetched::NotModified
    );
}

#[tokio::test]
async fn a_redirect_is_followed_by_hand_within_bounds() {
    let base = serve(misbehaving()).await;
    let fetcher = Fetcher::new().unwrap();
    let get = |path: &str| {
        let url = format!("{base}{path}").parse().unwrap();
        let fetcher = fetcher.clone();
        async move { fetcher.get(&url, &Validators::default(), soon()).await }
    };
    assert!(matches!(get("/hop").await, Ok(Fetched::Body { .. })));
    assert_eq!(get("/loop/a").await, Err(FetchError::RedirectLoop));
    assert_eq!(get("/chain/0").await, Err(FetchError::TooManyRedirects));
    assert_eq!(get("/ftp").await, Err(FetchError::BadRedirect));
}

#[tokio::test(start_paused = true)]
async fn every_bad_source_is_an_error_with_a_reason() {
    let base = serve(misbehaving()).await;
    let fetcher = Fetcher::new().unwrap();
    let get = |path: &str, deadline: Deadline| {
        let url = format!("{base}{path}").parse().unwrap();
        let fetcher = fetcher.clone();
        async move { fetcher.get(&url, &Validators::default(), deadline).await }
    };
    let slow = get("/slow", Deadline::after(Duration::from_millis(300))).await;
    assert!(matches!(slow, Err(FetchError::Timeout(_))), "{slow:?}");
    assert_eq!(slow.unwrap_err().to_string(), "no answer within 0.3 s");
    assert_eq!(
        get("/limited", soon()).await,
        Err(FetchError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        })
    );
    assert_eq!(get("/down", soon()).await, Err(FetchError::Status(503)));
    assert_eq!(get("/big", soon()).await, Err(FetchError::TooLarge));
    assert_eq!(get("/big-stream", soon()).await, Err(FetchError::TooLarge));
    // Nothing listens on port 1.
    let refused = fetcher
        .get(
            &"http://127.0.0.1:1/x".parse().unwrap(),
            &Validators::default(),
            soon(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "connection refused or unreachable");
}

// === the sources together ===

/// What a local status server serves, switchable by the test.
#[derive(Clone)]
struct Pages {
    summary: Arc<Mutex<(StatusCode, String)>>,
    incidents: Arc<Mutex<Value>>,
}

fn status_server(pages: Pages, endpoints: Value, feed: String) -> Router {
    let summary = pages.summary.clone();
    let incidents = pages.incidents.clone();
    Router::new()
        .route(
            "/status/api/v2/summary.json",
            get(move || {
                let (status, body) = summary.lock().unwrap().clone();
                async move { (status, body) }
            }),
        )
        .route(
            "/status/api/v2/incidents.json",
            get(move || {
                let body = incidents.lock().unwrap().to_string();
                async move { body }
            }),
        )
        .route(
            "/or/api/v1/models/moonshotai/kimi-k2.6/endpoints",
            get(move || {
                let body = endpoints.to_string();
                async move { body }
            }),
        )
        .route(
            "/feed.xml",
            get(move || {
                let body = feed.clone();
                async move { ([(header::CONTENT_TYPE, "application/rss+xml")], body) }
            }),
        )
        .route(
            "/html",
            get(|| async { "<!DOCTYPE html><html><body>Sign in</body></html>" }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Response::new(axum::body::Body::empty())
            }),
        )
}

fn settings(base: &str, feeds: Vec<CommunityFeed>) -> Settings {
    Settings {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        aggregator_url: format!("{base}/or/api/v1").parse().unwrap(),
        providers: vec![ProviderSources {
            provider: "kimi".into(),
            name: "Kimi".into(),
            official: Some(OfficialSource {
                root: format!("{base}/status").parse().unwrap(),
                components: vec!["Open API".into()],
            }),
            aggregator: Some(AggregatorSource {
                model: "moonshotai/kimi-k2.6".into(),
                endpoint: Some("Moonshot AI".into()),
            }),
            community: feeds,
        }],
        ..Settings::default()
    }
}

fn feed_at(base: &str, path: &str) -> CommunityFeed {
    CommunityFeed {
        name: "r/LocalLLaMA".into(),
        url: format!("{base}{path}").parse().unwrap(),
        keywords: vec!["kimi down".into()],
        window: Duration::from_secs(1_800),
        baseline: Duration::from_secs(7 * 86_400),
        min_reports: 3,
    }
}

fn rss(titles_and_times: &[(&str, crate::time::Millis)]) -> String {
    let items: String = titles_and_times
        .iter()
        .enumerate()
        .map(|(n, (title, at))| {
            let date = httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(*at).unwrap()),
            );
            format!("<item><title>{title}</title><guid>g{n}</guid><pubDate>{date}</pubDate></item>")
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
}

#[tokio::test(start_paused = true)]
async fn a_check_gathers_every_source_and_names_the_unavailable_ones() {
    let now = crate::time::Clock::system().now();
    let pages = Pages {
        summary: Arc::new(Mutex::new((
            StatusCode::OK,
            sp_summary(
                "major",
                &[("c1", "Open API", "partial_outage")],
                vec![sp_incident(
                    "i1",
                    "API errors",
                    "major",
                    &rfc3339(now - 7 * MINUTE_MS),
                    None,
                    &[("c1", "Open API")],
                )],
            )
            .to_string(),
        ))),
        incidents: Arc::new(Mutex::new(json!({"incidents": []}))),
    };
    let endpoints = or_endpoints(
        "moonshotai/kimi-k2.6",
        &[
            ("Moonshot AI", "moonshotai", 0, Some(62.0)),
            ("DeepInfra", "deepinfra", 0, Some(99.0)),
        ],
    );
    let posts: Vec<(&str, crate::time::Millis)> = (0..6)
        .map(|n| ("kimi down?", now - n * MINUTE_MS))
        .collect();
    let base = serve(status_server(pages, endpoints, rss(&posts))).await;
    let feeds = vec![
        feed_at(&base, "/feed.xml"),
        feed_at(&base, "/html"),
        feed_at(&base, "/slow"),
    ];
    let settings = settings(&base, feeds);

    let all = gather(
        &settings,
        &["kimi".to_owned(), "other".to_owned()],
        Duration::from_millis(1_500),
        now,
    )
    .await;
    assert_eq!(all.len(), 2);
    assert!(!all[1].any(), "a provider without sources has none");
    let kimi = &all[0];
    let official = kimi.official.as_ref().unwrap().ok().unwrap();
    assert_eq!(official.indicator, Indicator::Major);
    assert_eq!(official.incidents[0].name, "API errors");
    let aggregator = kimi.aggregator.as_ref().unwrap().ok().unwrap();
    assert_eq!(aggregator.view.as_str(), "degraded");
    let counts: Vec<&Reading<_>> = kimi.community.iter().map(|(_, r)| r).collect();
    let spike = counts[0].ok().unwrap();
    assert_eq!(spike.reports, 6);
    assert!(spike.spike);
    assert_eq!(
        counts[1].reason(),
        Some("an HTML page, not an RSS, Atom or JSON feed")
    );
    assert_eq!(counts[2].reason(), Some("no answer within 1.5 s"));
}

#[tokio::test]
async fn the_poller_records_an_acknowledgement_that_arrives_later_with_its_lead() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("isdown.db"))
            .await
            .unwrap(),
    );
    let clock = Clock::starting_at(T0);
    let pages = Pages {
        summary: Arc::new(Mutex::new((
            StatusCode::OK,
            sp_summary("none", &[("c1", "Open API", "operational")], vec![]).to_string(),
        ))),
        incidents: Arc::new(Mutex::new(json!({"incidents": []}))),
    };
    let base = serve(status_server(
        pages.clone(),
        or_endpoints(
            "moonshotai/kimi-k2.6",
            &[("Moonshot AI", "moonshotai", 0, Some(99.0))],
        ),
        rss(&[]),
    ))
    .await;
    // isdown's own incident, opened before the page says anything.
    let id = store
        .open_incident(&NewIncident {
            monitor: "kimi-chat".into(),
            provider: "kimi".into(),
            kind: crate::incident::IncidentKind::Outage,
            verdict: Verdict::Unavailable,
            started_at: T0 - 15 * MINUTE_MS,
            failed_probes: 3,
            first_error: None,
            opened_by: None,
        })
        .await
        .unwrap();
    let (view_tx, mut view) = watch::channel(Arc::new(SourcesView::default()));
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(poller::run(
        settings(&base, Vec::new()),
        Deps {
            store: store.clone(),
            clock,
            window: 90 * crate::time::DAY_MS,
            view: view_tx,
        },
        stop,
    ));
    let first = view
        .wait_for(|v| !v.providers.is_empty())
        .await
        .unwrap()
        .clone();
    let kimi = first.provider("kimi").unwrap();
    assert_eq!(kimi.lead.outages, 1);
    assert_eq!(kimi.lead.acknowledged, 0);
    assert!(
        store
            .incident(id)
            .await
            .unwrap()
            .unwrap()
            .official
            .is_none()
    );

    // The page posts it 12 minutes after isdown's incident began.
    let posted = rfc3339(T0 - 3 * MINUTE_MS);
    *pages.summary.lock().unwrap() = (
        StatusCode::OK,
        sp_summary(
            "major",
            &[("c1", "Open API", "major_outage")],
            vec![sp_incident(
                "sp1",
                "Open API errors",
                "major",
                &posted,
                None,
                &[("c1", "Open API")],
            )],
        )
        .to_string(),
    );
    let acknowledged = view
        .wait_for(|v| v.provider("kimi").is_some_and(|p| p.lead.acknowledged == 1))
        .await
        .unwrap()
        .clone();
    assert_eq!(
        acknowledged.provider("kimi").unwrap().lead.median_lead,
        Some(12 * MINUTE_MS)
    );
    let incident = store.incident(id).await.unwrap().unwrap();
    let ack = incident.official.clone().unwrap();
    assert_eq!(ack.title, "Open API errors");
    assert_eq!(ack.url.as_deref(), Some("https://stspg.io/sp1"));
    assert_eq!(incident.lead(), Some(12 * MINUTE_MS));
    assert_eq!(ack.resolved_at, None);

    // The page resolves it: summary no longer lists it, incidents.json does.
    *pages.incidents.lock().unwrap() = json!({"incidents": [sp_incident(
        "sp1", "Open API errors", "major", &posted, Some(&rfc3339(T0 - MINUTE_MS)), &[("c1", "Open API")]
    )]});
    *pages.summary.lock().unwrap() = (
        StatusCode::OK,
        sp_summary("none", &[("c1", "Open API", "operational")], vec![]).to_string(),
    );
    view.wait_for(|v| {
        v.provider("kimi")
            .and_then(|p| p.now.official.as_ref())
            .and_then(|o| o.ok())
            .is_some_and(|o| o.indicator == Indicator::None)
    })
    .await
    .unwrap();
    let resolved = store.incident(id).await.unwrap().unwrap().official.unwrap();
    assert_eq!(resolved.resolved_at, Some(T0 - MINUTE_MS));

    // A page that breaks leaves the acknowledgement alone and says why.
    *pages.summary.lock().unwrap() = (
        StatusCode::OK,
        "<!doctype html><html>maintenance</html>".to_owned(),
    );
    let broken = view
        .wait_for(|v| {
            v.provider("kimi")
                .and_then(|p| p.now.official.as_ref())
                .is_some_and(|o| o.reason().is_some())
        })
        .await
        .unwrap()
        .clone();
    let reason = broken
        .provider("kimi")
        .unwrap()
        .now
        .official
        .clone()
        .unwrap();
    assert_eq!(
        reason.reason(),
        Some("an HTML page, not Statuspage summary JSON")
    );
    assert_eq!(broken.provider("kimi").unwrap().lead.acknowledged, 1);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}
