//! The pure judgements: community reports against their baseline, and which official incident
//! acknowledged which of ours, with lead times.

use std::time::Duration;

use super::T0;
use crate::corroborate::CommunityFeed;
use crate::corroborate::community::count;
use crate::corroborate::feed::FeedItem;
use crate::corroborate::lead::{EARLY_BY, LATE_BY, acknowledgements, apply, median, stats, unseen};
use crate::incident::IncidentKind;
use crate::store::{Incident, OfficialIncident, StoredOfficialIncident};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};
use crate::verdict::Verdict;

// === community ===

fn feed() -> CommunityFeed {
    CommunityFeed {
        name: "r/LocalLLaMA".into(),
        url: "https://www.reddit.com/r/LocalLLaMA/search.rss"
            .parse()
            .unwrap(),
        keywords: vec!["kimi down".into(), "moonshot".into()],
        window: Duration::from_secs(30 * 60),
        baseline: Duration::from_secs(7 * 86_400),
        min_reports: 3,
    }
}

fn post(n: usize, title: &str, at: Millis) -> FeedItem {
    FeedItem {
        key: format!("p{n}"),
        title: title.into(),
        text: String::new(),
        link: Some(format!("https://example.com/{n}")),
        at: Some(at),
    }
}

/// One matching post every 12 hours over the last week: usually 0, sometimes 1.
fn quiet_week() -> Vec<FeedItem> {
    (1..=14)
        .map(|k| {
            post(
                100 + k,
                "Kimi down?",
                T0 - k as Millis * 12 * HOUR_MS - 45 * MINUTE_MS,
            )
        })
        .collect()
}

#[test]
fn many_reports_against_a_quiet_baseline_are_a_spike() {
    let mut items = quiet_week();
    items
        .extend((0..14).map(|n| post(n, "Is KIMI DOWN for anyone?", T0 - n as Millis * MINUTE_MS)));
    // Posts that do not match, and matches outside the window, do not count.
    items.push(post(50, "Kimi K2.6 review", T0 - MINUTE_MS));
    items.push(post(51, "kimi down", T0 - 31 * MINUTE_MS));
    let c = count(&items, &feed(), None, T0);
    assert_eq!(c.reports, 14);
    assert_eq!(c.usual, Some((0, 0)));
    assert!(c.spike);
    assert_eq!(c.newest.unwrap().0, "Is KIMI DOWN for anyone?");
}

#[test]
fn a_single_post_is_not_a_spike_and_a_busy_feed_needs_more() {
    let mut items = quiet_week();
    items.push(post(1, "moonshot api down?", T0 - MINUTE_MS));
    let one = count(&items, &feed(), None, T0);
    assert_eq!(one.reports, 1);
    assert!(!one.spike);

    // A feed that usually has 3 reports per half hour: 5 is not unusual, 7 is.
    let busy: Vec<FeedItem> = (1..=48)
        .flat_map(|w| {
            (0..3).map(move |i| {
                post(
                    1_000 + w * 10 + i,
                    "kimi down",
                    T0 - w as Millis * 30 * MINUTE_MS - (i as Millis + 1) * MINUTE_MS,
                )
            })
        })
        .collect();
    let with = |n: usize| {
        let mut items = busy.clone();
        items.extend((0..n).map(|i| post(i, "kimi down", T0 - i as Millis * MINUTE_MS)));
        count(&items, &feed(), None, T0)
    };
    assert_eq!(with(5).usual, Some((3, 3)));
    assert!(!with(5).spike);
    assert!(with(7).spike);
}

#[test]
fn without_earlier_coverage_there_is_no_baseline() {
    let items: Vec<FeedItem> = (0..4)
        .map(|n| post(n, "kimi down", T0 - n as Millis * MINUTE_MS))
        .collect();
    let c = count(&items, &feed(), None, T0);
    assert_eq!(c.usual, None);
    // Enough reports are a spike on their own.
    assert!(c.spike);
    // Having read the feed for a day gives a baseline of empty windows.
    let known = count(&items, &feed(), Some(T0 - DAY_MS), T0);
    assert_eq!(known.usual, Some((0, 0)));
}

#[test]
fn posts_without_a_date_or_from_the_far_future_are_not_counted() {
    let mut undated = post(1, "kimi down", T0);
    undated.at = None;
    let future = post(2, "kimi down", T0 + HOUR_MS);
    let c = count(&[undated, future], &feed(), None, T0);
    assert_eq!(c.reports, 0);
}

// === acknowledgements ===

fn ours(
    id: i64,
    provider: &str,
    kind: IncidentKind,
    start: Millis,
    end: Option<Millis>,
) -> Incident {
    Incident {
        id,
        monitor: format!("{provider}-chat"),
        provider: provider.into(),
        kind,
        verdict: Verdict::Unavailable,
        started_at: start,
        ended_at: end,
        failed_probes: 3,
        first_error: None,
        last_error: None,
        official: None,
        opened_by: None,
    }
}

fn official(
    id: i64,
    provider: &str,
    start: Millis,
    posted: Millis,
    resolved: Option<Millis>,
) -> StoredOfficialIncident {
    StoredOfficialIncident {
        id,
        provider: provider.into(),
        first_seen_at: posted,
        incident: OfficialIncident {
            source_id: format!("sp{id}"),
            title: format!("Incident {id}"),
            url: Some(format!("https://stspg.io/{id}")),
            impact: "major".into(),
            started_at: start,
            acknowledged_at: posted,
            resolved_at: resolved,
        },
    }
}

#[test]
fn an_acknowledgement_posted_later_gives_the_lead_from_our_start() {
    let now = T0 + HOUR_MS;
    let mut list = vec![ours(1, "kimi", IncidentKind::Outage, T0, None)];
    // Nothing on the page yet.
    assert!(acknowledgements(&list, &[], now).is_empty());
    // Twelve minutes later the page posts it (and backdates its start).
    let page = vec![official(
        7,
        "kimi",
        T0 - 5 * MINUTE_MS,
        T0 + 12 * MINUTE_MS,
        None,
    )];
    let links = acknowledgements(&list, &page, now);
    assert_eq!(links, vec![(1, 7)]);
    apply(&mut list, &links, &page);
    assert_eq!(list[0].lead(), Some(12 * MINUTE_MS));
    assert_eq!(list[0].official.as_ref().unwrap().title, "Incident 7");
    // Linked incidents are not linked again.
    assert!(acknowledgements(&list, &page, now).is_empty());
}

#[test]
fn a_page_that_was_first_gives_a_negative_lead() {
    let mut list = vec![ours(1, "kimi", IncidentKind::Outage, T0, None)];
    let page = vec![official(7, "kimi", T0 - HOUR_MS, T0 - 20 * MINUTE_MS, None)];
    let links = acknowledgements(&list, &page, T0 + MINUTE_MS);
    apply(&mut list, &links, &page);
    assert_eq!(list[0].lead(), Some(-20 * MINUTE_MS));
}

#[test]
fn matching_needs_the_same_provider_an_outage_and_overlapping_times() {
    let ended = T0 + 20 * MINUTE_MS;
    let list = vec![
        ours(1, "kimi", IncidentKind::Outage, T0, Some(ended)),
        ours(2, "kimi", IncidentKind::SetupProblem, T0, None),
        ours(3, "*", IncidentKind::Network, T0, None),
    ];
    let now = T0 + 3 * HOUR_MS;
    let cases = [
        // Posted after ours ended, within the allowed lag: a match.
        (
            official(10, "kimi", ended + LATE_BY, ended + LATE_BY, None),
            true,
        ),
        // Later than that: another incident.
        (
            official(11, "kimi", ended + LATE_BY + 1, ended + LATE_BY + 1, None),
            false,
        ),
        // Resolved just before ours began: still the same trouble.
        (
            official(12, "kimi", T0 - HOUR_MS, T0 - HOUR_MS, Some(T0 - EARLY_BY)),
            true,
        ),
        (
            official(
                13,
                "kimi",
                T0 - HOUR_MS,
                T0 - HOUR_MS,
                Some(T0 - EARLY_BY - 1),
            ),
            false,
        ),
        // Another provider's page.
        (official(14, "deepseek", T0, T0 + MINUTE_MS, None), false),
    ];
    for (o, matches) in cases {
        let links = acknowledgements(&list, std::slice::from_ref(&o), now);
        let expected = if matches { vec![(1, o.id)] } else { vec![] };
        assert_eq!(links, expected, "official {}", o.id);
    }
}

#[test]
fn of_several_matches_the_first_posted_acknowledged_it() {
    let list = vec![ours(1, "kimi", IncidentKind::Outage, T0, None)];
    let page = vec![
        official(20, "kimi", T0, T0 + 30 * MINUTE_MS, None),
        official(21, "kimi", T0, T0 + 8 * MINUTE_MS, None),
    ];
    assert_eq!(acknowledgements(&list, &page, T0 + HOUR_MS), vec![(1, 21)]);
}

#[test]
fn the_median_lead_counts_only_acknowledged_outages() {
    let mut list = vec![
        ours(1, "kimi", IncidentKind::Outage, T0, Some(T0 + HOUR_MS)),
        ours(
            2,
            "kimi",
            IncidentKind::Outage,
            T0 + DAY_MS,
            Some(T0 + DAY_MS + HOUR_MS),
        ),
        ours(
            3,
            "kimi",
            IncidentKind::Outage,
            T0 + 2 * DAY_MS,
            Some(T0 + 2 * DAY_MS + HOUR_MS),
        ),
        ours(4, "kimi", IncidentKind::Outage, T0 + 3 * DAY_MS, None),
        ours(5, "deepseek", IncidentKind::Outage, T0, None),
    ];
    let page = vec![
        official(1, "kimi", T0, T0 + 10 * MINUTE_MS, Some(T0 + HOUR_MS)),
        official(
            2,
            "kimi",
            T0 + DAY_MS,
            T0 + DAY_MS + 30 * MINUTE_MS,
            Some(T0 + DAY_MS + HOUR_MS),
        ),
        official(
            3,
            "kimi",
            T0 + 2 * DAY_MS,
            T0 + 2 * DAY_MS + 20 * MINUTE_MS,
            Some(T0 + 2 * DAY_MS + HOUR_MS),
        ),
    ];
    let now = T0 + 4 * DAY_MS;
    let links = acknowledgements(&list, &page, now);
    apply(&mut list, &links, &page);
    let kimi = stats("kimi", &list);
    assert_eq!((kimi.outages, kimi.acknowledged), (4, 3));
    assert_eq!(kimi.median_lead, Some(20 * MINUTE_MS));
    assert_eq!(stats("deepseek", &list).median_lead, None);
    assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
    assert_eq!(median(vec![]), None);
}

#[test]
fn official_incidents_isdown_did_not_see_are_those_no_outage_of_ours_overlaps() {
    let list = vec![ours(
        1,
        "kimi",
        IncidentKind::Outage,
        T0,
        Some(T0 + HOUR_MS),
    )];
    let now = T0 + 10 * DAY_MS;
    let mut maintenance = official(
        4,
        "kimi",
        T0 + 3 * DAY_MS,
        T0 + 3 * DAY_MS,
        Some(T0 + 3 * DAY_MS + HOUR_MS),
    );
    maintenance.incident.impact = "maintenance".into();
    let mut before_isdown = official(
        5,
        "kimi",
        T0 - 30 * DAY_MS,
        T0 - 30 * DAY_MS,
        Some(T0 - 29 * DAY_MS),
    );
    before_isdown.first_seen_at = T0;
    let page = vec![
        official(
            3,
            "kimi",
            T0 + 2 * DAY_MS,
            T0 + 2 * DAY_MS,
            Some(T0 + 2 * DAY_MS + HOUR_MS),
        ),
        official(
            2,
            "kimi",
            T0 + 5 * MINUTE_MS,
            T0 + 5 * MINUTE_MS,
            Some(T0 + HOUR_MS),
        ),
        maintenance,
        before_isdown,
        official(6, "deepseek", T0 + DAY_MS, T0 + DAY_MS, None),
    ];
    let missed: Vec<i64> = unseen("kimi", &page, &list, now)
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(missed, vec![3]);
}
