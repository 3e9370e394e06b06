//! The behaviour every [`Store`] implementation must show, written against the trait only.
//!
//! Each function takes a fresh, empty store and panics on a violation; `store::tests` calls them
//! from one `#[tokio::test]` per back end (SQLite now, PostgreSQL later). Anything that needs raw
//! SQL (corrupting a row, reading rollup rows) belongs to the back end's own tests, not here.

use crate::incident::IncidentKind;
use crate::store::{
    IncidentFilter, IncidentState, MonitorRecord, NewIncident, Origin, Pruned, ResultRecord,
    Retention, SavedState, SeriesStep, Store, StoreError,
};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};
use crate::verdict::{Blame, Verdict};

mod alerts;
mod official;
mod queue;
pub use alerts::*;
pub use official::*;
pub use queue::*;

/// 2026-01-01T00:00:00Z: a UTC midnight, so day and hour buckets start at round offsets from it.
pub const T0: Millis = 1_767_225_600_000;

/// A result as a probe would report it: healthy ones with a latency and no words, failures with
/// an explanation and the verdict's default blame.
pub fn result(monitor: &str, at: Millis, verdict: Verdict) -> ResultRecord {
    let healthy = verdict.is_healthy();
    ResultRecord {
        monitor_id: monitor.to_owned(),
        at,
        verdict,
        blame: verdict.default_blame(),
        status: if healthy { Some(200) } else { None },
        latency_ms: healthy.then_some(250.0),
        ttft_ms: None,
        explanation: (!healthy).then(|| format!("{verdict} sample")),
        region: None,
    }
}

fn blamed(mut result: ResultRecord, blame: Blame) -> ResultRecord {
    result.blame = Some(blame);
    result
}

/// A result of `monitor` that took `latency_ms`.
fn timed(monitor: &str, at: Millis, verdict: Verdict, latency_ms: f64) -> ResultRecord {
    ResultRecord {
        latency_ms: Some(latency_ms),
        ..result(monitor, at, verdict)
    }
}

pub fn new_incident(monitor: &str, started_at: Millis) -> NewIncident {
    NewIncident {
        monitor: monitor.to_owned(),
        provider: "kimi".to_owned(),
        kind: IncidentKind::Outage,
        verdict: Verdict::Unavailable,
        started_at,
        failed_probes: 3,
        first_error: Some("503 from api.moonshot.ai".to_owned()),
        opened_by: None,
    }
}

pub fn all_incidents(limit: u32) -> IncidentFilter {
    IncidentFilter {
        state: None,
        monitor: None,
        limit,
        offset: 0,
    }
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value");
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

// === results ===

pub async fn recent_results_come_newest_first_up_to_the_limit(store: &dyn Store) {
    let mut failure = result("kimi-chat", T0 + 3_000, Verdict::RateLimited);
    failure.status = Some(429);
    failure.ttft_ms = Some(12.5);
    let mut fast = result("kimi-chat", T0 + 2_000, Verdict::Up);
    fast.latency_ms = Some(312.456);
    fast.ttft_ms = Some(98.001);
    let written = vec![
        result("kimi-chat", T0, Verdict::Up),
        result("kimi-chat", T0 + 1_000, Verdict::Degraded),
        fast,
        failure,
        result("deepseek-chat", T0 + 500, Verdict::Up),
    ];
    store.record_results(&written).await.unwrap();

    let recent = store.recent_results("kimi-chat", 3).await.unwrap();
    assert_eq!(
        recent,
        vec![written[3].clone(), written[2].clone(), written[1].clone()]
    );
    let all = store.recent_results("kimi-chat", 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        store.recent_results("deepseek-chat", 100).await.unwrap(),
        vec![written[4].clone()]
    );
    assert!(store.recent_results("nobody", 10).await.unwrap().is_empty());
    assert!(
        store
            .recent_results("kimi-chat", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_result_keeps_the_region_it_was_probed_from(store: &dyn Store) {
    let eu = ResultRecord {
        region: Some("eu-west".into()),
        ..result("kimi-chat", T0 + 1_000, Verdict::Unavailable)
    };
    let default = result("kimi-chat", T0, Verdict::Up);
    store.record_results(&[default, eu]).await.unwrap();
    let recent = store.recent_results("kimi-chat", 10).await.unwrap();
    let regions: Vec<Option<&str>> = recent.iter().map(|r| r.region.as_deref()).collect();
    assert_eq!(regions, [Some("eu-west"), None], "newest first");
}

pub async fn healthy_results_keep_no_explanation(store: &dyn Store) {
    let mut up = result("m", T0, Verdict::Up);
    up.explanation = Some("answered in 250 ms".to_owned());
    store.record_results(&[up]).await.unwrap();
    let stored = store.recent_results("m", 1).await.unwrap();
    assert_eq!(stored[0].explanation, None);
}

/// Larger than one multi-row statement, with one result given twice inside the batch (in the
/// same statement and in a later one), then the whole batch replayed.
pub async fn a_replayed_batch_is_not_counted_twice(store: &dyn Store) {
    let mut batch: Vec<ResultRecord> = (0..150)
        .map(|i| {
            let verdict = if i % 3 == 0 {
                Verdict::ServerError
            } else {
                Verdict::Up
            };
            result("m", T0 + i * 1_000, verdict)
        })
        .collect();
    batch.insert(1, batch[0].clone());
    batch.push(batch[5].clone());
    store.record_results(&batch).await.unwrap();
    store.record_results(&batch).await.unwrap();
    assert_eq!(store.recent_results("m", 1_000).await.unwrap().len(), 150);
    let uptime = store.uptime("m", T0 + HOUR_MS).await.unwrap();
    assert_close(uptime.h24, 100.0 / 150.0);
}

pub async fn a_large_batch_over_many_monitors_lands_in_each(store: &dyn Store) {
    let monitors: Vec<String> = (0..100).map(|i| format!("provider-{i}")).collect();
    let batch: Vec<ResultRecord> = (0..3)
        .flat_map(|round| {
            monitors.iter().enumerate().map(move |(i, id)| {
                // Monitor i fails its last probe when i is even.
                let verdict = if round == 2 && i % 2 == 0 {
                    Verdict::Overloaded
                } else {
                    Verdict::Up
                };
                result(id, T0 + round * 30_000 + i as Millis, verdict)
            })
        })
        .collect();
    store.record_results(&batch).await.unwrap();
    for (i, id) in monitors.iter().enumerate() {
        let recent = store.recent_results(id, 10).await.unwrap();
        assert_eq!(recent.len(), 3, "{id}");
        assert!(recent.iter().all(|r| r.monitor_id == *id));
        let expected = if i % 2 == 0 { 2.0 / 3.0 } else { 1.0 };
        assert_close(store.uptime(id, T0 + HOUR_MS).await.unwrap().h24, expected);
    }
}

pub async fn an_empty_batch_is_fine(store: &dyn Store) {
    store.record_results(&[]).await.unwrap();
}

pub async fn monitors_register_idempotently_before_or_after_results(store: &dyn Store) {
    store
        .record_results(&[result("late", T0, Verdict::Up)])
        .await
        .unwrap();
    let monitors = vec![
        MonitorRecord {
            id: "late".into(),
            provider: "kimi".into(),
            model: Some("kimi-k2.6".into()),
            probe: "chat".into(),
        },
        MonitorRecord {
            id: "early".into(),
            provider: "deepseek".into(),
            model: None,
            probe: "stream".into(),
        },
    ];
    store.register_monitors(&monitors).await.unwrap();
    store.register_monitors(&monitors).await.unwrap();
    store
        .record_results(&[result("early", T0, Verdict::Up)])
        .await
        .unwrap();
    assert_eq!(store.recent_results("late", 10).await.unwrap().len(), 1);
    assert_eq!(store.recent_results("early", 10).await.unwrap().len(), 1);
}

// === uptime and latency ===

pub async fn uptime_counts_only_provider_failures_per_window(store: &dyn Store) {
    let now = T0 + 100 * DAY_MS + 12 * HOUR_MS;
    store
        .record_results(&[
            result("m", now - HOUR_MS, Verdict::Up),
            result("m", now - 2 * HOUR_MS, Verdict::Degraded),
            result("m", now - 3 * HOUR_MS, Verdict::Up),
            // Ours, not the provider's: left out of every window.
            result("m", now - 30 * MINUTE_MS, Verdict::AuthFailed),
            blamed(
                result("m", now - 40 * MINUTE_MS, Verdict::Timeout),
                Blame::Network,
            ),
            // Outside 24 h, inside 7 d.
            result("m", now - 25 * HOUR_MS, Verdict::Unavailable),
            // Outside 30 d, inside 90 d.
            result("m", now - 40 * DAY_MS, Verdict::ServerError),
            // Outside 90 d.
            result("m", now - 95 * DAY_MS, Verdict::ServerError),
        ])
        .await
        .unwrap();

    let uptime = store.uptime("m", now).await.unwrap();
    assert_close(uptime.h24, 1.0);
    assert_close(uptime.d7, 0.75);
    assert_close(uptime.d30, 0.75);
    assert_close(uptime.d90, 0.6);
}

pub async fn uptime_is_none_without_provider_evidence(store: &dyn Store) {
    let uptime = store.uptime("nobody", T0).await.unwrap();
    assert_eq!(
        (uptime.h24, uptime.d7, uptime.d30, uptime.d90),
        (None, None, None, None)
    );
    store
        .record_results(&[
            result("broken-key", T0, Verdict::AuthFailed),
            blamed(
                result("broken-key", T0 + 1, Verdict::Network),
                Blame::Network,
            ),
        ])
        .await
        .unwrap();
    let uptime = store.uptime("broken-key", T0 + MINUTE_MS).await.unwrap();
    assert_eq!(
        (uptime.h24, uptime.d7, uptime.d30, uptime.d90),
        (None, None, None, None)
    );
}

/// 00:59:59.999 and 01:00:00.000 fall in different hour buckets: a window whose oldest bucket
/// starts at 01:00 sees only the later result.
pub async fn hour_buckets_split_exactly_on_the_hour(store: &dyn Store) {
    store
        .record_results(&[
            result("m", T0 + HOUR_MS - 1, Verdict::Unavailable),
            result("m", T0 + HOUR_MS, Verdict::Up),
        ])
        .await
        .unwrap();
    let uptime = store.uptime("m", T0 + 25 * HOUR_MS - 1).await.unwrap();
    assert_close(uptime.h24, 1.0);
    assert_close(uptime.d7, 0.5);
    let uptime = store.uptime("m", T0 + 25 * HOUR_MS).await.unwrap();
    assert_eq!(uptime.h24, None);
    assert_close(uptime.d7, 0.5);
}

pub async fn daily_latency_interpolates_percentiles_per_day(store: &dyn Store) {
    let day_a = T0 + 10 * DAY_MS;
    let day_b = T0 + 11 * DAY_MS;
    let day_c = T0 + 12 * DAY_MS;
    let day_d = T0 + 13 * DAY_MS;
    let mut batch = Vec::new();
    // Day A: 100 samples, all in (200, 300] ms.
    for i in 0..100 {
        batch.push(timed(
            "m",
            day_a + i * MINUTE_MS,
            Verdict::Up,
            200.5 + i as f64,
        ));
    }
    // Day B: 90 fast samples in (0, 50], 10 slow ones in (1000, 1500], plus failures and a
    // healthy result without a latency, neither of which is a sample.
    for i in 0..90 {
        batch.push(timed("m", day_b + i * MINUTE_MS, Verdict::Up, 30.0));
    }
    for i in 90..100 {
        batch.push(timed(
            "m",
            day_b + i * MINUTE_MS,
            Verdict::Degraded,
            1_200.0,
        ));
    }
    batch.push(result("m", day_b + 200 * MINUTE_MS, Verdict::ServerError));
    let mut unmeasured = result("m", day_b + 201 * MINUTE_MS, Verdict::Up);
    unmeasured.latency_ms = None;
    batch.push(unmeasured);
    // Day C: failures only, so no latency to report.
    batch.push(result("m", day_c, Verdict::Timeout));
    // Day D: one answer slower than the top bound.
    batch.push(timed("m", day_d, Verdict::Degraded, 90_000.0));
    store.record_results(&batch).await.unwrap();

    let now = day_d + 6 * HOUR_MS;
    let days = store.daily_latency("m", now, 4).await.unwrap();
    let summary: Vec<(Millis, u64)> = days.iter().map(|d| (d.day, d.samples)).collect();
    assert_eq!(summary, vec![(day_a, 100), (day_b, 100), (day_d, 1)]);
    assert_close(Some(days[0].p50_ms), 250.0);
    assert_close(Some(days[0].p95_ms), 295.0);
    assert_close(Some(days[1].p50_ms), 50.0 * 50.0 / 90.0);
    assert_close(Some(days[1].p95_ms), 1_250.0);
    assert_close(Some(days[2].p50_ms), 60_000.0);
    assert_close(Some(days[2].p95_ms), 60_000.0);

    // Two days up to `now`: day D (partial) and day C (no samples).
    let days = store.daily_latency("m", now, 2).await.unwrap();
    assert_eq!(days.iter().map(|d| d.day).collect::<Vec<_>>(), vec![day_d]);
    assert!(store.daily_latency("m", now, 0).await.unwrap().is_empty());
    assert!(
        store
            .daily_latency("nobody", now, 30)
            .await
            .unwrap()
            .is_empty()
    );
}

// === incidents ===

pub async fn one_incident_is_open_per_monitor(store: &dyn Store) {
    let origin = |instance: &str, region: &str| {
        Some(Origin {
            instance: instance.to_owned(),
            region: region.to_owned(),
        })
    };
    let first = NewIncident {
        opened_by: origin("eu-1", "eu-west"),
        ..new_incident("kimi-chat", T0)
    };
    let id = store.open_incident(&first).await.unwrap();
    let mut second = new_incident("kimi-chat", T0 + MINUTE_MS);
    second.verdict = Verdict::ServerError;
    second.opened_by = origin("us-1", "us-east");
    assert_eq!(store.open_incident(&second).await.unwrap(), id);
    let other = store
        .open_incident(&new_incident("deepseek-chat", T0))
        .await
        .unwrap();
    assert_ne!(other, id);
    let mut network = new_incident("*", T0);
    network.kind = IncidentKind::Network;
    let network_id = store.open_incident(&network).await.unwrap();
    assert_ne!(network_id, id);

    let stored = store.incident(id).await.unwrap().expect("stored");
    assert_eq!(stored.monitor, "kimi-chat");
    assert_eq!(stored.provider, "kimi");
    assert_eq!(stored.kind, IncidentKind::Outage);
    // The second open changed nothing.
    assert_eq!(stored.verdict, Verdict::Unavailable);
    assert_eq!(stored.started_at, T0);
    assert_eq!(stored.ended_at, None);
    assert_eq!(stored.failed_probes, 3);
    assert_eq!(
        stored.first_error.as_deref(),
        Some("503 from api.moonshot.ai")
    );
    assert_eq!(stored.last_error, None);
    // Who opened it: the first opener, kept by the second open.
    assert_eq!(stored.opened_by, origin("eu-1", "eu-west"));
    assert_eq!(
        store.incident(other).await.unwrap().unwrap().opened_by,
        None
    );
    assert_eq!(
        store.incident(network_id).await.unwrap().unwrap().kind,
        IncidentKind::Network
    );
    assert!(store.incident(id + 1_000).await.unwrap().is_none());
}

pub async fn incident_failures_close_and_reopen(store: &dyn Store) {
    let id = store.open_incident(&new_incident("m", T0)).await.unwrap();
    store
        .note_incident_failure(id, Verdict::ServerError, Some("500 internal"))
        .await
        .unwrap();
    store
        .note_incident_failure(id, Verdict::Timeout, None)
        .await
        .unwrap();
    let noted = store.incident(id).await.unwrap().unwrap();
    assert_eq!(noted.failed_probes, 5);
    assert_eq!(noted.verdict, Verdict::Timeout);
    // A failure without a sample keeps the last one there was.
    assert_eq!(noted.last_error.as_deref(), Some("500 internal"));

    store.close_incident(id, T0 + 10 * MINUTE_MS).await.unwrap();
    // Closing again keeps the first end time; a closed incident takes no more failures.
    store.close_incident(id, T0 + 20 * MINUTE_MS).await.unwrap();
    let closed = store.incident(id).await.unwrap().unwrap();
    assert_eq!(closed.ended_at, Some(T0 + 10 * MINUTE_MS));
    assert!(
        store
            .note_incident_failure(id, Verdict::Timeout, None)
            .await
            .is_err()
    );

    // Flap: the closed incident comes back instead of a new one.
    store.reopen_incident(id).await.unwrap();
    store.reopen_incident(id).await.unwrap();
    assert_eq!(store.incident(id).await.unwrap().unwrap().ended_at, None);
    assert_eq!(
        store
            .open_incident(&new_incident("m", T0 + HOUR_MS))
            .await
            .unwrap(),
        id
    );

    // With another incident open for the monitor, reopening is refused and changes nothing.
    store.close_incident(id, T0 + HOUR_MS).await.unwrap();
    let newer = store
        .open_incident(&new_incident("m", T0 + 2 * HOUR_MS))
        .await
        .unwrap();
    assert_ne!(newer, id);
    assert!(store.reopen_incident(id).await.is_err());
    assert_eq!(
        store.incident(id).await.unwrap().unwrap().ended_at,
        Some(T0 + HOUR_MS)
    );
    assert_eq!(store.incident(newer).await.unwrap().unwrap().ended_at, None);

    let unknown = newer + 1_000;
    assert!(
        store
            .note_incident_failure(unknown, Verdict::Timeout, None)
            .await
            .is_err()
    );
    assert!(store.close_incident(unknown, T0).await.is_err());
    assert!(store.reopen_incident(unknown).await.is_err());
}

pub async fn incidents_filter_and_page_newest_first(store: &dyn Store) {
    // (monitor, started_at, closed?)
    let plan = [
        ("a", T0, true),
        ("b", T0 + HOUR_MS, true),
        ("a", T0 + 2 * HOUR_MS, true),
        ("b", T0 + 3 * HOUR_MS, false),
        ("a", T0 + 4 * HOUR_MS, false),
    ];
    let mut ids = Vec::new();
    for (monitor, started_at, closed) in plan {
        let id = store
            .open_incident(&new_incident(monitor, started_at))
            .await
            .unwrap();
        if closed {
            store
                .close_incident(id, started_at + MINUTE_MS)
                .await
                .unwrap();
        }
        ids.push(id);
    }
    let listed = |filter: IncidentFilter| async move {
        store
            .incidents(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(all_incidents(10)).await,
        vec![ids[4], ids[3], ids[2], ids[1], ids[0]]
    );
    let open = IncidentFilter {
        state: Some(IncidentState::Open),
        ..all_incidents(10)
    };
    assert_eq!(listed(open).await, vec![ids[4], ids[3]]);
    let closed_a = IncidentFilter {
        state: Some(IncidentState::Closed),
        monitor: Some("a".into()),
        ..all_incidents(10)
    };
    assert_eq!(listed(closed_a).await, vec![ids[2], ids[0]]);
    let only_b = IncidentFilter {
        monitor: Some("b".into()),
        ..all_incidents(10)
    };
    assert_eq!(listed(only_b).await, vec![ids[3], ids[1]]);

    let page = |offset| IncidentFilter {
        offset,
        ..all_incidents(2)
    };
    assert_eq!(listed(page(0)).await, vec![ids[4], ids[3]]);
    assert_eq!(listed(page(2)).await, vec![ids[2], ids[1]]);
    assert_eq!(listed(page(4)).await, vec![ids[0]]);
    assert!(listed(page(6)).await.is_empty());
    assert!(listed(all_incidents(0)).await.is_empty());
}

// === monitor state ===

pub async fn monitor_state_snapshots_overwrite_and_load(store: &dyn Store) {
    assert!(store.load_monitor_states().await.unwrap().is_empty());
    store
        .save_monitor_state("b", r#"{"state":"up","streak":4}"#)
        .await
        .unwrap();
    store.save_monitor_state("a", "[1,2]").await.unwrap();
    store
        .save_monitor_state("b", r#"{"state":"down","streak":1}"#)
        .await
        .unwrap();
    assert_eq!(
        store.load_monitor_states().await.unwrap(),
        vec![
            ("a".to_owned(), SavedState::Snapshot("[1,2]".to_owned())),
            (
                "b".to_owned(),
                SavedState::Snapshot(r#"{"state":"down","streak":1}"#.to_owned())
            ),
        ]
    );
}

pub async fn a_snapshot_that_is_not_json_is_refused(store: &dyn Store) {
    store.save_monitor_state("a", "{}").await.unwrap();
    let refused = store.save_monitor_state("a", "{not json").await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.load_monitor_states().await.unwrap(),
        vec![("a".to_owned(), SavedState::Snapshot("{}".to_owned()))]
    );
}

pub async fn snapshots_saved_together_land_each_and_one_bad_refuses_all(store: &dyn Store) {
    // More than one transaction's worth, one of them saved before (overwritten).
    store.save_monitor_state("m0000", "[0]").await.unwrap();
    let states: Vec<(String, String)> = (0..2_500)
        .map(|i| (format!("m{i:04}"), format!("{{\"n\":{i}}}")))
        .collect();
    store.save_monitor_states(&states).await.unwrap();
    let loaded = store.load_monitor_states().await.unwrap();
    let expected: Vec<(String, SavedState)> = states
        .iter()
        .map(|(m, s)| (m.clone(), SavedState::Snapshot(s.clone())))
        .collect();
    assert_eq!(loaded, expected);
    // One snapshot that is not JSON refuses the call before anything is written.
    let mixed = vec![
        ("m0001".to_owned(), "[1]".to_owned()),
        ("m0002".to_owned(), "{not json".to_owned()),
    ];
    let refused = store.save_monitor_states(&mixed).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    let loaded = store.load_monitor_states().await.unwrap();
    assert_eq!(loaded[1], expected[1]);
}

pub async fn a_quarantined_state_is_set_aside_and_the_monitor_starts_afresh(store: &dyn Store) {
    store.save_monitor_state("a", "{}").await.unwrap();
    store.save_monitor_state("b", r#"{"x":1}"#).await.unwrap();
    store
        .quarantine_monitor_state("a", "not a monitor state", T0)
        .await
        .unwrap();
    assert_eq!(
        store.load_monitor_states().await.unwrap(),
        vec![(
            "b".to_owned(),
            SavedState::Snapshot(r#"{"x":1}"#.to_owned())
        )]
    );
    // Quarantining a monitor with nothing saved is harmless.
    store
        .quarantine_monitor_state("nobody", "gone", T0)
        .await
        .unwrap();
}

// === what goes in ===

/// A key no pattern would recognise (short, no digits, no prefix): only the exact-value scrub
/// can catch it.
pub const SCRUBBED_KEY: &str = "suiteproxykeyvalue";

/// Every text a write carries passes the store's gate: configured secrets become `[redacted]`,
/// and U+0000 (which PostgreSQL's text cannot hold) becomes U+FFFD — on both back ends alike.
pub async fn texts_are_scrubbed_and_nul_free_on_their_way_in(store: &dyn Store) {
    crate::secret::register([SCRUBBED_KEY]);
    let echo = format!("key {SCRUBBED_KEY} rejected\0 after a NUL");
    let clean = "key [redacted] rejected\u{FFFD} after a NUL";

    let mut failed = result("m", T0, Verdict::AuthFailed);
    failed.explanation = Some(echo.clone());
    store.record_results(&[failed]).await.unwrap();
    let read = store.recent_results("m", 1).await.unwrap();
    assert_eq!(read[0].explanation.as_deref(), Some(clean));

    let mut incident = new_incident("m", T0);
    incident.first_error = Some(echo.clone());
    let id = store.open_incident(&incident).await.unwrap();
    store
        .note_incident_failure(id, Verdict::AuthFailed, Some(&echo))
        .await
        .unwrap();
    let stored = store.incident(id).await.unwrap().unwrap();
    assert_eq!(stored.first_error.as_deref(), Some(clean));
    assert_eq!(stored.last_error.as_deref(), Some(clean));

    // JSON keeps a NUL escaped inside its strings: only the key goes.
    let snapshot = serde_json::json!({ "last": echo, "count": 2 }).to_string();
    store.save_monitor_state("m", &snapshot).await.unwrap();
    let [(_, SavedState::Snapshot(saved))] = &store.load_monitor_states().await.unwrap()[..] else {
        panic!("one readable snapshot");
    };
    let saved: serde_json::Value = serde_json::from_str(saved).unwrap();
    assert_eq!(saved["last"], "key [redacted] rejected\0 after a NUL");
    assert_eq!(saved["count"], 2);

    store
        .record_official_incidents(
            "kimi",
            &[crate::store::OfficialIncident {
                source_id: "x".into(),
                title: echo.clone(),
                url: None,
                impact: "major".into(),
                started_at: T0,
                acknowledged_at: T0,
                resolved_at: None,
            }],
            T0,
        )
        .await
        .unwrap();
    let official = store.official_incidents_between(T0, T0).await.unwrap();
    assert_eq!(official[0].incident.title, clean);
}

// === retention ===

pub async fn prune_removes_exactly_what_retention_allows(store: &dyn Store) {
    let now = T0 + 100 * DAY_MS;
    let retention = Retention {
        raw: 2 * DAY_MS,
        minute: 3 * DAY_MS,
        hour: 10 * DAY_MS,
        day: 40 * DAY_MS,
    };
    // Raw results go when `at < now - raw`; a rollup goes once its bucket ended at or before
    // `now - retention` of its resolution.
    store
        .record_results(&[
            // Raw, minute, hour and day rows all go.
            result("m", now - 50 * DAY_MS, Verdict::Up),
            // Raw, minute and hour go; the day bucket ends after now - 40 d.
            result("m", now - 35 * DAY_MS, Verdict::Up),
            // Raw and minute go.
            result("m", now - 5 * DAY_MS, Verdict::Up),
            // Raw and minute go: the minute bucket ends exactly at now - 3 d.
            result("m", now - 3 * DAY_MS - 1, Verdict::Up),
            // Raw goes; the minute bucket starts at now - 3 d.
            result("m", now - 3 * DAY_MS, Verdict::Up),
            // Raw goes (1 ms too old).
            result("m", now - 2 * DAY_MS - 1, Verdict::Up),
            // Everything stays.
            result("m", now - 2 * DAY_MS, Verdict::Up),
            result("m", now - HOUR_MS, Verdict::Up),
        ])
        .await
        .unwrap();
    let gone_closed = store
        .open_incident(&new_incident("x", now - 60 * DAY_MS))
        .await
        .unwrap();
    store
        .close_incident(gone_closed, now - 40 * DAY_MS - 1)
        .await
        .unwrap();
    let kept_closed = store
        .open_incident(&new_incident("x", now - 50 * DAY_MS))
        .await
        .unwrap();
    store
        .close_incident(kept_closed, now - 40 * DAY_MS)
        .await
        .unwrap();
    let ancient_open = store
        .open_incident(&new_incident("y", now - 300 * DAY_MS))
        .await
        .unwrap();

    let pruned = store.prune(now, &retention).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            results: 6,
            rollups: 4 + 2 + 1,
            incidents: 1,
            official: 0,
        }
    );
    let kept: Vec<Millis> = store
        .recent_results("m", 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(kept, vec![now - HOUR_MS, now - 2 * DAY_MS]);
    assert!(store.incident(gone_closed).await.unwrap().is_none());
    assert!(store.incident(kept_closed).await.unwrap().is_some());
    assert!(store.incident(ancient_open).await.unwrap().is_some());
    // Day rollups still answer for what raw results no longer hold.
    assert_close(store.uptime("m", now).await.unwrap().d90, 1.0);

    assert_eq!(
        store.prune(now, &retention).await.unwrap(),
        Pruned::default()
    );
}

pub async fn size_grows_with_data(store: &dyn Store) {
    let empty = store.size_bytes().await.unwrap();
    assert!(empty > 0);
    let batch: Vec<ResultRecord> = (0..2_000)
        .map(|i| result("m", T0 + i * 30_000, Verdict::Up))
        .collect();
    store.record_results(&batch).await.unwrap();
    assert!(store.size_bytes().await.unwrap() > empty);
}

// === restart ===

/// First half of the restart test: run against a store that is then closed and reopened, and
/// [`everything_survives_a_restart_check`] run against the reopened one.
pub async fn everything_survives_a_restart_write(store: &dyn Store) -> i64 {
    store
        .register_monitors(&[MonitorRecord {
            id: "m".into(),
            provider: "kimi".into(),
            model: None,
            probe: "chat".into(),
        }])
        .await
        .unwrap();
    store
        .record_results(&[
            result("m", T0, Verdict::Up),
            result("m", T0 + 30_000, Verdict::Unavailable),
        ])
        .await
        .unwrap();
    store
        .save_monitor_state("m", r#"{"state":"down"}"#)
        .await
        .unwrap();
    store.open_incident(&new_incident("m", T0)).await.unwrap()
}

pub async fn everything_survives_a_restart_check(store: &dyn Store, incident: i64) {
    let recent = store.recent_results("m", 10).await.unwrap();
    assert_eq!(
        recent.iter().map(|r| r.verdict).collect::<Vec<_>>(),
        vec![Verdict::Unavailable, Verdict::Up]
    );
    assert_eq!(
        store.load_monitor_states().await.unwrap(),
        vec![(
            "m".to_owned(),
            SavedState::Snapshot(r#"{"state":"down"}"#.to_owned())
        )]
    );
    assert_eq!(
        store
            .open_incident(&new_incident("m", T0 + HOUR_MS))
            .await
            .unwrap(),
        incident
    );
    // New results after the restart land in the same monitor's rollups.
    store
        .record_results(&[result("m", T0 + 60_000, Verdict::Up)])
        .await
        .unwrap();
    assert_close(
        store.uptime("m", T0 + MINUTE_MS).await.unwrap().h24,
        2.0 / 3.0,
    );
}

// === status page reads ===

pub async fn daily_counts_split_each_day_by_blame(store: &dyn Store) {
    let (day_a, day_b, day_c) = (T0, T0 + DAY_MS, T0 + 3 * DAY_MS);
    store
        .record_results(&[
            result("m", day_a, Verdict::Up),
            result("m", day_b, Verdict::Up),
            result("m", day_b + HOUR_MS, Verdict::Degraded),
            result("m", day_b + 2 * HOUR_MS, Verdict::Unavailable),
            result("m", day_b + 3 * HOUR_MS, Verdict::AuthFailed),
            blamed(
                result("m", day_b + 4 * HOUR_MS, Verdict::Timeout),
                Blame::Network,
            ),
            result("m", day_c + 5 * HOUR_MS, Verdict::ServerError),
            result("other", day_b, Verdict::ServerError),
        ])
        .await
        .unwrap();

    // Three days up to `now`: day B, the empty day between (absent) and day C (partial).
    let now = day_c + 6 * HOUR_MS;
    let days = store.daily_counts("m", now, 3).await.unwrap();
    let rows: Vec<(Millis, u64, u64, u64, u64, u64)> = days
        .iter()
        .map(|d| {
            (
                d.day,
                d.total,
                d.healthy,
                d.degraded,
                d.provider_failed,
                d.other_failed,
            )
        })
        .collect();
    assert_eq!(rows, vec![(day_b, 5, 2, 1, 1, 2), (day_c, 1, 0, 0, 1, 0)]);
    // Uptime of a day follows the uptime rule: account and network failures are left out.
    assert_close(days[0].uptime(), 2.0 / 3.0);
    assert_close(days[1].uptime(), 0.0);

    let all = store.daily_counts("m", now, 90).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.day).collect::<Vec<_>>(),
        vec![day_a, day_b, day_c]
    );
    assert!(store.daily_counts("m", now, 0).await.unwrap().is_empty());
    assert!(
        store
            .daily_counts("nobody", now, 90)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn latency_series_reads_hour_and_day_percentiles(store: &dyn Store) {
    let mut batch = Vec::new();
    // Hour 0: 100 samples in (200, 300] ms.
    for i in 0..100 {
        batch.push(timed("m", T0 + i * 30_000, Verdict::Up, 200.5 + i as f64));
    }
    // Hour 1: failures only, no latency. Hour 2: ten samples in (100, 200].
    batch.push(result("m", T0 + HOUR_MS, Verdict::Unavailable));
    for i in 0..10 {
        batch.push(timed(
            "m",
            T0 + 2 * HOUR_MS + i * MINUTE_MS,
            Verdict::Up,
            150.0,
        ));
    }
    store.record_results(&batch).await.unwrap();

    let now = T0 + 2 * HOUR_MS + 30 * MINUTE_MS;
    let hours = store
        .latency_series("m", SeriesStep::Hour, now, 24)
        .await
        .unwrap();
    let summary: Vec<(Millis, u64)> = hours.iter().map(|p| (p.start, p.samples)).collect();
    assert_eq!(summary, vec![(T0, 100), (T0 + 2 * HOUR_MS, 10)]);
    assert_close(Some(hours[0].p50_ms), 250.0);
    assert_close(Some(hours[0].p95_ms), 295.0);
    assert_close(Some(hours[1].p50_ms), 150.0);
    assert_close(Some(hours[1].p95_ms), 195.0);

    // Two hours up to `now`: hour 1 (no samples) and hour 2.
    let recent = store
        .latency_series("m", SeriesStep::Hour, now, 2)
        .await
        .unwrap();
    assert_eq!(
        recent.iter().map(|p| p.start).collect::<Vec<_>>(),
        vec![T0 + 2 * HOUR_MS]
    );

    let days = store
        .latency_series("m", SeriesStep::Day, now, 30)
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].start, days[0].samples), (T0, 110));
    assert!(
        store
            .latency_series("nobody", SeriesStep::Day, now, 30)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn incidents_between_are_those_open_in_the_window(store: &dyn Store) {
    let early = store.open_incident(&new_incident("a", T0)).await.unwrap();
    store.close_incident(early, T0 + HOUR_MS).await.unwrap();
    let open = store
        .open_incident(&new_incident("b", T0 + 2 * HOUR_MS))
        .await
        .unwrap();
    let late = store
        .open_incident(&new_incident("c", T0 + 5 * HOUR_MS))
        .await
        .unwrap();
    store.close_incident(late, T0 + 6 * HOUR_MS).await.unwrap();

    let ids = |list: Vec<crate::store::Incident>| list.iter().map(|i| i.id).collect::<Vec<_>>();
    let window = store
        .incidents_between(T0 + 30 * MINUTE_MS, T0 + 3 * HOUR_MS)
        .await
        .unwrap();
    assert_eq!(ids(window), vec![open, early]);
    // Bounds are inclusive: an incident that ended exactly at `from` was open then.
    let edge = store
        .incidents_between(T0 + HOUR_MS, T0 + HOUR_MS)
        .await
        .unwrap();
    assert_eq!(ids(edge), vec![early]);
    let after = store
        .incidents_between(T0 + 7 * HOUR_MS, T0 + 8 * HOUR_MS)
        .await
        .unwrap();
    assert_eq!(ids(after), vec![open]);
    let all = store.incidents_between(T0, T0 + DAY_MS).await.unwrap();
    assert_eq!(ids(all), vec![late, open, early]);
}
