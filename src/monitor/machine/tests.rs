use super::*;

const T0: Millis = 1_700_000_000_000;
const STEP: Millis = 30_000;

fn obs(i: i64, verdict: Verdict) -> Observation {
    Observation {
        at: T0 + i * STEP,
        verdict,
        blame: verdict.default_blame(),
        sample: Some(format!("sample {i}")),
    }
}

/// Feeds verdicts one interval apart; returns every effect with the index that caused it.
fn feed(m: &mut Machine, verdicts: &[Verdict]) -> Vec<(usize, Effect)> {
    let t = Thresholds::default();
    let mut out = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        for e in m.observe(&obs(i as i64, *v), &t) {
            out.push((i, e));
        }
    }
    out
}

fn opens(effects: &[(usize, Effect)]) -> Vec<(usize, IncidentKind)> {
    effects
        .iter()
        .filter_map(|(i, e)| match e {
            Effect::Open { kind, .. } => Some((*i, *kind)),
            _ => None,
        })
        .collect()
}

fn closes(effects: &[(usize, Effect)]) -> Vec<usize> {
    effects
        .iter()
        .filter_map(|(i, e)| matches!(e, Effect::Close { .. }).then_some(*i))
        .collect()
}

use Verdict::{AuthFailed, Degraded, Network, RateLimited, Unavailable, Up};

#[test]
fn a_single_failure_asks_for_confirmation_and_opens_nothing() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[Up, Unavailable, Up, Up]);
    assert!(opens(&effects).is_empty());
    assert!(effects.contains(&(1, Effect::Confirm)));
    assert_eq!(m.state(), MonitorState::Up);
}

#[test]
fn two_consecutive_provider_failures_open_an_outage_dated_from_the_first() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[Up, Unavailable, Unavailable]);
    assert_eq!(opens(&effects), [(2, IncidentKind::Outage)]);
    let Some((
        _,
        Effect::Open {
            started_at,
            failed_probes,
            first_error,
            reopen,
            ..
        },
    )) = effects
        .iter()
        .find(|(_, e)| matches!(e, Effect::Open { .. }))
    else {
        unreachable!()
    };
    assert_eq!(*started_at, T0 + STEP);
    assert_eq!(*failed_probes, 2);
    assert_eq!(first_error.as_deref(), Some("sample 1"));
    assert_eq!(*reopen, None);
    assert_eq!(m.state(), MonitorState::Down);
    assert_eq!(m.since(), Some(T0 + STEP));
}

#[test]
fn further_failures_are_noted_on_the_open_incident() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[Unavailable, Unavailable, Unavailable]);
    assert!(matches!(effects.last(), Some((2, Effect::Note { .. }))));
}

#[test]
fn recovery_needs_two_consecutive_successes_and_confirms_after_the_first() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[Unavailable, Unavailable, Up, Unavailable, Up, Up]);
    assert_eq!(closes(&effects), [5]);
    assert!(effects.contains(&(2, Effect::Confirm)));
    assert_eq!(m.state(), MonitorState::Up);
    assert_eq!(opens(&effects).len(), 1);
}

#[test]
fn rate_limits_and_bad_keys_are_setup_problems_never_outages() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[RateLimited, RateLimited, RateLimited]);
    assert_eq!(opens(&effects), [(1, IncidentKind::SetupProblem)]);
    assert_eq!(m.state(), MonitorState::SetupProblem);

    let mut m = Machine::new();
    let effects = feed(&mut m, &[AuthFailed, AuthFailed]);
    assert_eq!(opens(&effects), [(1, IncidentKind::SetupProblem)]);
}

#[test]
fn flapping_opens_one_incident_that_stays_open_until_stable() {
    let mut m = Machine::new();
    let pattern: Vec<Verdict> = (0..40)
        .map(|i| if i % 2 == 0 { Up } else { Unavailable })
        .chain([Up, Up])
        .collect();
    let effects = feed(&mut m, &pattern);
    let opened = opens(&effects);
    assert_eq!(opened.len(), 1, "{opened:?}");
    // 5 provider failures among the last 10 results: the 5th failure (index 9) opens it.
    assert_eq!(opened[0], (9, IncidentKind::Outage));
    assert_eq!(closes(&effects), [41]);
}

#[test]
fn failing_again_soon_after_recovery_reopens_the_same_incident() {
    let mut m = Machine::new();
    let t = Thresholds::default();
    for (i, v) in [Unavailable, Unavailable].iter().enumerate() {
        m.observe(&obs(i as i64, *v), &t);
    }
    m.set_incident_id(42);
    let mut effects = Vec::new();
    for (i, v) in [Up, Up, Unavailable, Unavailable].iter().enumerate() {
        effects.extend(m.observe(&obs(2 + i as i64, *v), &t));
    }
    let reopened = effects.iter().find_map(|e| match e {
        Effect::Open { reopen, .. } => Some(*reopen),
        _ => None,
    });
    assert_eq!(reopened, Some(Some(42)));
    assert_eq!(m.open_incident(), Some((IncidentKind::Outage, Some(42))));
}

#[test]
fn failing_long_after_recovery_opens_a_new_incident() {
    let mut m = Machine::new();
    let t = Thresholds::default();
    let at = |i: i64, v| Observation {
        at: T0 + i * 60 * 60_000,
        verdict: v,
        blame: v.default_blame(),
        sample: None,
    };
    m.observe(&at(0, Unavailable), &t);
    m.observe(&at(1, Unavailable), &t);
    m.set_incident_id(7);
    m.observe(&at(2, Up), &t);
    m.observe(&at(3, Up), &t);
    m.observe(&at(4, Unavailable), &t);
    let effects = m.observe(&at(5, Unavailable), &t);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Open { reopen: None, .. }))
    );
}

#[test]
fn network_blamed_results_change_nothing() {
    let mut m = Machine::new();
    feed(&mut m, &[Up]);
    let before = m.clone();
    let t = Thresholds::default();
    for i in 1..5 {
        let o = Observation {
            at: T0 + i * STEP,
            verdict: Network,
            blame: Some(Blame::Network),
            sample: None,
        };
        assert!(m.observe(&o, &t).is_empty());
    }
    assert_eq!(m, before);
}

#[test]
fn a_setup_problem_turning_into_an_outage_closes_one_and_opens_the_other() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[AuthFailed, AuthFailed, Unavailable, Unavailable]);
    assert_eq!(
        opens(&effects),
        [(1, IncidentKind::SetupProblem), (3, IncidentKind::Outage)]
    );
    assert_eq!(closes(&effects), [3]);
}

#[test]
fn degraded_is_healthy_and_shows_as_degraded() {
    let mut m = Machine::new();
    let effects = feed(&mut m, &[Degraded, Degraded]);
    assert!(effects.is_empty());
    assert_eq!(m.state(), MonitorState::Degraded);
}

#[test]
fn a_restored_snapshot_continues_exactly_where_it_stopped() {
    let mut m = Machine::new();
    feed(&mut m, &[Unavailable, Unavailable]);
    m.set_incident_id(3);
    let mut restored = Machine::restore(&m.snapshot()).unwrap();
    assert_eq!(restored, m);
    let effects = restored.observe(&obs(2, Unavailable), &Thresholds::default());
    assert!(matches!(
        effects.as_slice(),
        [Effect::Note {
            incident: Some(3),
            ..
        }]
    ));
}

#[test]
fn a_corrupt_snapshot_is_an_error_not_a_panic() {
    assert!(Machine::restore("{not json").is_err());
    assert!(Machine::restore("{\"state\":\"sideways\"}").is_err());
}
