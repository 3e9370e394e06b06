//! The alert outbox part of the store suite.

use super::{T0, new_incident};
use crate::incident::IncidentKind;
use crate::store::{AlertCommit, AttemptFailure, NewAlertGroup, NewOutboxEntry, Store};
use crate::time::MINUTE_MS;

fn entry(channel: &str, key: &str, event: &str, at: i64) -> NewOutboxEntry {
    NewOutboxEntry {
        channel: channel.to_owned(),
        dedup_key: key.to_owned(),
        event: event.to_owned(),
        payload: format!(r#"{{"event":"{event}"}}"#),
        created_at: at,
    }
}

fn group(key: &str, incidents: Vec<i64>) -> NewAlertGroup {
    NewAlertGroup {
        dedup_key: key.to_owned(),
        kind: IncidentKind::Outage,
        opened_at: T0,
        incidents,
    }
}

pub async fn alert_commits_create_groups_and_queue_entries_per_channel(store: &dyn Store) {
    let a = store.open_incident(&new_incident("a", T0)).await.unwrap();
    let b = store.open_incident(&new_incident("b", T0)).await.unwrap();
    store
        .commit_alerts(&AlertCommit {
            new_groups: vec![group("g1", vec![a, b])],
            entries: vec![
                entry("slack", "g1", "opened", T0),
                entry("pager", "g1", "opened", T0),
            ],
            ..AlertCommit::default()
        })
        .await
        .unwrap();

    let groups = store.unresolved_alert_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].dedup_key, "g1");
    assert_eq!(groups[0].kind, IncidentKind::Outage);
    assert_eq!(groups[0].incidents, vec![(a, None), (b, None)]);
    assert_eq!((groups[0].opened_at, groups[0].last_sent_at), (T0, T0));

    let slack = store.pending_alerts("slack", 10).await.unwrap();
    assert_eq!(slack.len(), 1);
    assert_eq!(
        (slack[0].event.as_str(), slack[0].payload.as_str()),
        ("opened", r#"{"event":"opened"}"#)
    );
    assert_eq!((slack[0].attempts, slack[0].next_attempt_at), (0, T0));
    assert_eq!(store.pending_alerts("pager", 10).await.unwrap().len(), 1);
    assert!(store.pending_alerts("email", 10).await.unwrap().is_empty());
}

pub async fn a_commit_with_a_duplicate_group_key_stores_nothing(store: &dyn Store) {
    let a = store.open_incident(&new_incident("a", T0)).await.unwrap();
    let first = AlertCommit {
        new_groups: vec![group("g1", vec![a])],
        entries: vec![entry("slack", "g1", "opened", T0)],
        ..AlertCommit::default()
    };
    store.commit_alerts(&first).await.unwrap();
    let again = AlertCommit {
        entries: vec![
            entry("slack", "g1", "opened", T0),
            entry("x", "g1", "opened", T0),
        ],
        ..first
    };
    assert!(store.commit_alerts(&again).await.is_err());
    assert_eq!(store.pending_alerts("slack", 10).await.unwrap().len(), 1);
    assert!(store.pending_alerts("x", 10).await.unwrap().is_empty());
}

pub async fn groups_see_incidents_end_and_leave_once_resolved(store: &dyn Store) {
    let a = store.open_incident(&new_incident("a", T0)).await.unwrap();
    let b = store.open_incident(&new_incident("b", T0)).await.unwrap();
    store
        .commit_alerts(&AlertCommit {
            new_groups: vec![group("g1", vec![a, b])],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    store.close_incident(a, T0 + MINUTE_MS).await.unwrap();
    store
        .commit_alerts(&AlertCommit {
            reminded: vec![("g1".into(), T0 + 30 * MINUTE_MS)],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    let groups = store.unresolved_alert_groups().await.unwrap();
    assert_eq!(
        groups[0].incidents,
        vec![(a, Some(T0 + MINUTE_MS)), (b, None)]
    );
    assert_eq!(groups[0].last_sent_at, T0 + 30 * MINUTE_MS);

    store.close_incident(b, T0 + 40 * MINUTE_MS).await.unwrap();
    store
        .commit_alerts(&AlertCommit {
            resolved: vec![("g1".into(), T0 + 40 * MINUTE_MS)],
            entries: vec![entry("slack", "g1", "resolved", T0 + 40 * MINUTE_MS)],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    assert!(store.unresolved_alert_groups().await.unwrap().is_empty());
}

pub async fn outbox_entries_are_delivered_retried_or_given_up(store: &dyn Store) {
    store
        .commit_alerts(&AlertCommit {
            entries: vec![
                entry("slack", "k", "opened", T0),
                entry("slack", "k", "resolved", T0 + 1),
                entry("pager", "k", "opened", T0),
            ],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    let slack = store.pending_alerts("slack", 10).await.unwrap();
    assert_eq!(
        slack.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["opened", "resolved"],
        "oldest first: a resolve never overtakes its open"
    );

    store
        .alert_attempt_failed(
            slack[0].id,
            &AttemptFailure {
                at: T0 + 5,
                error: "HTTP 503".into(),
                next_attempt_at: T0 + 1_000,
                give_up: false,
            },
        )
        .await
        .unwrap();
    let retried = &store.pending_alerts("slack", 10).await.unwrap()[0];
    assert_eq!(retried.id, slack[0].id);
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.next_attempt_at, T0 + 1_000);
    assert_eq!(retried.last_error.as_deref(), Some("HTTP 503"));

    store
        .alert_delivered(slack[0].id, T0 + 1_000)
        .await
        .unwrap();
    assert!(
        store
            .alert_delivered(slack[0].id, T0 + 2_000)
            .await
            .is_err(),
        "a delivered entry cannot be delivered twice"
    );
    let pager = store.pending_alerts("pager", 10).await.unwrap();
    store
        .alert_attempt_failed(
            pager[0].id,
            &AttemptFailure {
                at: T0 + 5,
                error: "HTTP 400: bad routing key".into(),
                next_attempt_at: T0 + 5,
                give_up: true,
            },
        )
        .await
        .unwrap();
    assert!(store.pending_alerts("pager", 10).await.unwrap().is_empty());

    let backlog = store.outbox_backlog().await.unwrap();
    let of = |c: &str| backlog.iter().find(|b| b.channel == c).unwrap().clone();
    assert_eq!((of("slack").pending, of("slack").failed), (1, 0));
    assert_eq!(of("slack").oldest_pending_at, Some(T0 + 1));
    assert_eq!((of("pager").pending, of("pager").failed), (0, 1));
    assert_eq!(of("pager").oldest_pending_at, None);

    let all = store.outbox_entries(10).await.unwrap();
    assert_eq!(all.len(), 3);
    let delivered = all.iter().find(|e| e.id == slack[0].id).unwrap();
    assert_eq!(
        (delivered.attempts, delivered.delivered_at),
        (2, Some(T0 + 1_000))
    );
    let given_up = all.iter().find(|e| e.id == pager[0].id).unwrap();
    assert_eq!(given_up.failed_at, Some(T0 + 5));
}

pub async fn pruning_alerts_keeps_what_is_pending_or_unresolved(store: &dyn Store) {
    let a = store.open_incident(&new_incident("a", T0)).await.unwrap();
    store
        .commit_alerts(&AlertCommit {
            new_groups: vec![group("open", vec![a]), group("done", vec![])],
            resolved: vec![("done".into(), T0)],
            entries: vec![
                entry("s", "open", "opened", T0),
                entry("s", "done", "resolved", T0),
            ],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    let pending = store.pending_alerts("s", 10).await.unwrap();
    store.alert_delivered(pending[1].id, T0).await.unwrap();

    let removed = store.prune_alerts(T0 + MINUTE_MS).await.unwrap();
    assert_eq!(removed, 2, "the delivered entry and the resolved group");
    assert_eq!(store.pending_alerts("s", 10).await.unwrap().len(), 1);
    let groups = store.unresolved_alert_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].dedup_key, "open");
}
