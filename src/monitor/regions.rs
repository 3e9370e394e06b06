//! Judging one monitor across regions: with instances in several regions, each region's holder
//! runs its own machine for the monitor, and an outage incident is everyone's only when a
//! quorum of the regions reporting sees the provider down; fewer make the monitor *regional*
//! ("Kimi fails from eu-west only"). Pure: the core feeds it the regions' reports and the
//! regions that have a live instance, and carries out the answer.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::machine::{Effect, MonitorState};
use crate::incident::IncidentKind;
use crate::store::RegionReport;
use crate::time::Millis;
use crate::verdict::Verdict;

/// The incident kinds the regions decide together (the others are each instance's own).
pub const DECIDED: [IncidentKind; 2] = [IncidentKind::Outage, IncidentKind::Regional];

/// One region's view of a monitor, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionView {
    pub state: String,
    pub verdict: Option<String>,
    pub since: Option<Millis>,
}

impl RegionView {
    pub fn of(report: &RegionReport) -> RegionView {
        RegionView {
            state: report.state.clone(),
            verdict: report.verdict.clone(),
            since: report.since,
        }
    }

    /// The state this view names (`Unknown` for a name this version does not know).
    pub fn monitor_state(&self) -> MonitorState {
        MonitorState::ALL
            .into_iter()
            .find(|s| s.as_str() == self.state)
            .unwrap_or(MonitorState::Unknown)
    }

    fn down(&self) -> bool {
        self.state == MonitorState::Down.as_str()
    }
}

/// What the regions say together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// At least the quorum sees an outage: one incident for all.
    Outage,
    /// Some regions, fewer than the quorum, see it down: these.
    Regional(Vec<String>),
    /// No region that reports sees it down.
    Clear,
}

/// The regions needed for an outage among `reporting`: `quorum` when set (at most all of
/// them), else a strict majority.
pub fn needed(reporting: usize, quorum: Option<u32>) -> usize {
    let majority = reporting / 2 + 1;
    let wanted = quorum.map_or(majority, |q| q as usize);
    wanted.clamp(1, reporting.max(1))
}

/// Judges `views` (region → view) counting only regions in `live` (a region without a live
/// instance no longer reports; a live region without a view yet counts as not down).
pub fn judge(
    views: &BTreeMap<String, RegionView>,
    live: &BTreeSet<String>,
    quorum: Option<u32>,
) -> Judgement {
    let failing: Vec<String> = views
        .iter()
        .filter(|(region, view)| live.contains(*region) && view.down())
        .map(|(region, _)| region.clone())
        .collect();
    if failing.is_empty() {
        Judgement::Clear
    } else if failing.len() >= needed(live.len(), quorum) {
        Judgement::Outage
    } else {
        Judgement::Regional(failing)
    }
}

/// The incident the regions' judgement calls for, given the one open (`current`): an outage
/// at the quorum, a regional one below it, none when no region sees the monitor down.
///
/// An open outage stays open until no region sees it down, even once fewer than the quorum
/// do: regions recover at their own probe times, and closing the outage at the quorum would
/// end every outage with a regional incident lasting a probe interval (one more page, and
/// its resolution, for a recovery). The monitor's state says `regional` meanwhile.
pub fn incident_for(judgement: &Judgement, current: Option<IncidentKind>) -> Option<IncidentKind> {
    match (judgement, current) {
        (Judgement::Outage, _) => Some(IncidentKind::Outage),
        (Judgement::Regional(_), Some(IncidentKind::Outage)) => Some(IncidentKind::Outage),
        (Judgement::Regional(_), _) => Some(IncidentKind::Regional),
        (Judgement::Clear, _) => None,
    }
}

/// What the regions that see the monitor down say: the verdict of the first of them (by name)
/// that names one this version knows, and when the earliest went down.
pub fn failing_since(views: &BTreeMap<String, RegionView>) -> (Option<Verdict>, Option<Millis>) {
    let down: Vec<&RegionView> = views.values().filter(|v| v.down()).collect();
    let verdict = down
        .iter()
        .find_map(|v| v.verdict.as_deref().and_then(Verdict::parse));
    let since = down.iter().filter_map(|v| v.since).min();
    (verdict, since)
}

/// A machine's effects without those the regions decide together (opening, closing or noting
/// an outage), for an instance that cannot read the other regions' views now; answers whether
/// any was left out, so the monitor is judged with the regions later. `noting_outage`: the
/// machine's open incident is an outage (a note does not repeat its kind).
pub fn deferred(effects: Vec<Effect>, noting_outage: bool) -> (Vec<Effect>, bool) {
    let (decided, kept): (Vec<Effect>, Vec<Effect>) =
        effects.into_iter().partition(|effect| match effect {
            Effect::Open { kind, .. } | Effect::Close { kind, .. } => DECIDED.contains(kind),
            Effect::Note { .. } => noting_outage,
            Effect::Confirm => false,
        });
    (kept, !decided.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_leaves_out_what_the_regions_decide_and_keeps_the_rest() {
        let open = |kind| Effect::Open {
            kind,
            verdict: Verdict::Unavailable,
            failed_probes: 2,
            started_at: 1,
            first_error: None,
            reopen: None,
        };
        let note = Effect::Note {
            incident: Some(7),
            verdict: Verdict::Unavailable,
            sample: None,
        };
        let close = |kind| Effect::Close {
            incident: Some(7),
            kind,
            ended_at: 2,
        };
        let (kept, any) = deferred(
            vec![open(IncidentKind::Outage), Effect::Confirm, note.clone()],
            true,
        );
        assert_eq!(kept, vec![Effect::Confirm]);
        assert!(any);
        let (kept, any) = deferred(vec![close(IncidentKind::Outage)], false);
        assert!(kept.is_empty());
        assert!(any);
        // A setup problem is this instance's own: it is written while the database is away too.
        let setup = vec![
            open(IncidentKind::SetupProblem),
            note,
            close(IncidentKind::SetupProblem),
        ];
        let (kept, any) = deferred(setup.clone(), false);
        assert_eq!(kept, setup);
        assert!(!any);
    }

    fn views(states: &[(&str, MonitorState)]) -> BTreeMap<String, RegionView> {
        states
            .iter()
            .map(|(region, state)| {
                (
                    (*region).to_owned(),
                    RegionView {
                        state: state.as_str().to_owned(),
                        verdict: None,
                        since: None,
                    },
                )
            })
            .collect()
    }

    fn live(regions: &[&str]) -> BTreeSet<String> {
        regions.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn the_default_quorum_is_a_strict_majority_of_the_regions_reporting() {
        let cases = [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)];
        for (reporting, majority) in cases {
            assert_eq!(needed(reporting, None), majority, "{reporting} regions");
        }
        assert_eq!(needed(3, Some(1)), 1);
        assert_eq!(needed(2, Some(5)), 2, "never more than all of them");
        assert_eq!(needed(0, None), 1);
    }

    #[test]
    fn regions_down_below_the_quorum_are_regional_and_at_it_an_outage() {
        use MonitorState::{Down, Up};
        let two = live(&["eu", "us"]);
        let cases: [(&[(&str, MonitorState)], Judgement); 4] = [
            (&[("eu", Up), ("us", Up)], Judgement::Clear),
            (
                &[("eu", Down), ("us", Up)],
                Judgement::Regional(vec!["eu".into()]),
            ),
            (&[("eu", Down), ("us", Down)], Judgement::Outage),
            // A region that has not reported yet counts as not down.
            (&[("eu", Down)], Judgement::Regional(vec!["eu".into()])),
        ];
        for (states, expected) in cases {
            assert_eq!(judge(&views(states), &two, None), expected, "{states:?}");
        }
    }

    #[test]
    fn a_region_without_a_live_instance_does_not_count() {
        use MonitorState::{Down, Up};
        let states = views(&[("eu", Down), ("us", Up), ("ap", Down)]);
        assert_eq!(
            judge(&states, &live(&["eu", "us"]), None),
            Judgement::Regional(vec!["eu".into()])
        );
        assert_eq!(
            judge(&states, &live(&["eu", "us", "ap"]), None),
            Judgement::Outage
        );
        // The only region left decides alone.
        assert_eq!(judge(&states, &live(&["eu"]), None), Judgement::Outage);
    }

    #[test]
    fn each_judgement_calls_for_its_incident_and_failing_regions_lend_their_details() {
        use IncidentKind::{Outage, Regional};
        let regional = Judgement::Regional(vec!["eu".into()]);
        let cases = [
            (Judgement::Outage, None, Some(Outage)),
            (Judgement::Outage, Some(Regional), Some(Outage)),
            (regional.clone(), None, Some(Regional)),
            (regional.clone(), Some(Regional), Some(Regional)),
            // An outage ends only when every region is clear.
            (regional, Some(Outage), Some(Outage)),
            (Judgement::Clear, Some(Outage), None),
            (Judgement::Clear, Some(Regional), None),
            (Judgement::Clear, None, None),
        ];
        for (judgement, current, wanted) in cases {
            assert_eq!(
                incident_for(&judgement, current),
                wanted,
                "{judgement:?} with {current:?} open"
            );
        }
        let mut states = views(&[
            ("ap", MonitorState::Down),
            ("eu", MonitorState::Down),
            ("us", MonitorState::Up),
        ]);
        states.get_mut("ap").unwrap().since = Some(2_000);
        states.get_mut("eu").unwrap().since = Some(1_000);
        states.get_mut("eu").unwrap().verdict = Some("unavailable".into());
        states.get_mut("us").unwrap().verdict = Some("timeout".into());
        assert_eq!(
            failing_since(&states),
            (Some(Verdict::Unavailable), Some(1_000))
        );
        assert_eq!(
            failing_since(&views(&[("us", MonitorState::Up)])),
            (None, None)
        );
    }

    #[test]
    fn a_configured_quorum_of_one_makes_any_failing_region_an_outage() {
        let states = views(&[("eu", MonitorState::Down), ("us", MonitorState::Up)]);
        assert_eq!(
            judge(&states, &live(&["eu", "us"]), Some(1)),
            Judgement::Outage
        );
    }
}
