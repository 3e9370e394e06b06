//! The official status pages part of the store suite: what pages said, and acknowledgements.

use super::{T0, all_incidents, new_incident};
use crate::store::{OfficialIncident, Retention, Store};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};

fn official(source_id: &str, started_at: Millis, resolved_at: Option<Millis>) -> OfficialIncident {
    OfficialIncident {
        source_id: source_id.to_owned(),
        title: format!("Elevated errors ({source_id})"),
        url: Some(format!("https://stspg.io/{source_id}")),
        impact: "major".to_owned(),
        started_at,
        acknowledged_at: started_at + 10 * MINUTE_MS,
        resolved_at,
    }
}

pub async fn official_incidents_are_inserted_then_updated_in_place(store: &dyn Store) {
    store
        .record_official_incidents("kimi", &[official("a", T0, None)], T0 + 11 * MINUTE_MS)
        .await
        .unwrap();
    // The same id from another provider is another incident.
    store
        .record_official_incidents("openai", &[official("a", T0, None)], T0 + 12 * MINUTE_MS)
        .await
        .unwrap();
    let mut resolved = official("a", T0, Some(T0 + HOUR_MS));
    resolved.title = "Elevated errors on the Open API".to_owned();
    resolved.impact = "critical".to_owned();
    store
        .record_official_incidents("kimi", &[resolved.clone()], T0 + 2 * HOUR_MS)
        .await
        .unwrap();
    let all = store
        .official_incidents_between(T0 - DAY_MS, T0 + DAY_MS)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let kimi = all.iter().find(|o| o.provider == "kimi").unwrap();
    assert_eq!(kimi.incident, resolved);
    // The first sighting is kept.
    assert_eq!(kimi.first_seen_at, T0 + 11 * MINUTE_MS);
    let openai = all.iter().find(|o| o.provider == "openai").unwrap();
    assert_eq!(openai.incident.resolved_at, None);
    store
        .record_official_incidents("kimi", &[], T0)
        .await
        .unwrap();
}

pub async fn official_incidents_between_are_those_open_in_the_window(store: &dyn Store) {
    store
        .record_official_incidents(
            "kimi",
            &[
                official("early", T0, Some(T0 + HOUR_MS)),
                official("open", T0 + 2 * HOUR_MS, None),
                official("late", T0 + 5 * HOUR_MS, Some(T0 + 6 * HOUR_MS)),
            ],
            T0,
        )
        .await
        .unwrap();
    let ids = |from: Millis, to: Millis| {
        let store = &store;
        async move {
            store
                .official_incidents_between(from, to)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.incident.source_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(T0 + 30 * MINUTE_MS, T0 + 3 * HOUR_MS).await,
        vec!["open", "early"]
    );
    // Inclusive bounds: resolved exactly at `from`.
    assert_eq!(ids(T0 + HOUR_MS, T0 + HOUR_MS).await, vec!["early"]);
    assert_eq!(ids(T0 + 7 * HOUR_MS, T0 + 8 * HOUR_MS).await, vec!["open"]);
    assert_eq!(ids(T0, T0 + DAY_MS).await, vec!["late", "open", "early"]);
}

pub async fn an_acknowledged_incident_reads_back_with_the_official_incident_as_it_stands(
    store: &dyn Store,
) {
    let ours = store
        .open_incident(&new_incident("kimi-chat", T0))
        .await
        .unwrap();
    let other = store
        .open_incident(&new_incident("kimi-stream", T0))
        .await
        .unwrap();
    assert_eq!(store.incident(ours).await.unwrap().unwrap().official, None);
    store
        .record_official_incidents(
            "kimi",
            &[official("a", T0, None), official("b", T0 + MINUTE_MS, None)],
            T0,
        )
        .await
        .unwrap();
    let stored = store
        .official_incidents_between(T0, T0 + DAY_MS)
        .await
        .unwrap();
    let id_of = |source: &str| {
        stored
            .iter()
            .find(|o| o.incident.source_id == source)
            .unwrap()
            .id
    };
    let (a, b) = (id_of("a"), id_of("b"));
    store
        .acknowledge_incidents(&[(ours, a), (other, a), (9_999, a), (ours + 1_000, 9_999)])
        .await
        .unwrap();
    // A second link does not replace the first; a link to nothing is skipped.
    store.acknowledge_incidents(&[(ours, b)]).await.unwrap();
    store
        .acknowledge_incidents(&[(other, 9_999)])
        .await
        .unwrap();

    // The page resolves it later: the incident reads the official row as it is now.
    store
        .record_official_incidents(
            "kimi",
            &[official("a", T0, Some(T0 + HOUR_MS))],
            T0 + HOUR_MS,
        )
        .await
        .unwrap();
    let read = store.incident(ours).await.unwrap().unwrap();
    let ack = read.official.clone().expect("acknowledged");
    assert_eq!(ack.official_id, a);
    assert_eq!(ack.title, "Elevated errors (a)");
    assert_eq!(ack.url.as_deref(), Some("https://stspg.io/a"));
    assert_eq!(ack.acknowledged_at, T0 + 10 * MINUTE_MS);
    assert_eq!(ack.resolved_at, Some(T0 + HOUR_MS));
    assert_eq!(read.lead(), Some(10 * MINUTE_MS));
    // Every read of incidents carries it.
    let listed = store.incidents(&all_incidents(10)).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|i| i.official.as_ref().map(|o| o.official_id) == Some(a))
    );
    let window = store.incidents_between(T0, T0 + DAY_MS).await.unwrap();
    assert!(window.iter().all(|i| i.official.is_some()));
}

pub async fn pruning_keeps_official_incidents_an_incident_refers_to(store: &dyn Store) {
    let now = T0 + 100 * DAY_MS;
    let retention = Retention {
        day: 40 * DAY_MS,
        ..Retention::default()
    };
    let ours = store
        .open_incident(&new_incident("kimi-chat", T0))
        .await
        .unwrap();
    store
        .record_official_incidents(
            "kimi",
            &[
                official("referenced", T0, Some(T0 + HOUR_MS)),
                official("old", T0, Some(T0 + HOUR_MS)),
                official("recent", now - DAY_MS, Some(now - HOUR_MS)),
            ],
            T0,
        )
        .await
        .unwrap();
    let stored = store.official_incidents_between(0, now).await.unwrap();
    let referenced = stored
        .iter()
        .find(|o| o.incident.source_id == "referenced")
        .unwrap()
        .id;
    store
        .acknowledge_incidents(&[(ours, referenced)])
        .await
        .unwrap();

    let pruned = store.prune(now, &retention).await.unwrap();
    assert_eq!(pruned.official, 1);
    let left: Vec<String> = store
        .official_incidents_between(0, now)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.incident.source_id)
        .collect();
    assert_eq!(left, vec!["recent", "referenced"]);
}
