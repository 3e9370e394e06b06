//! Judging one monitor across regions: with instances in several regions, each region's holder
//! runs its own machine for the monitor, and an outage incident is everyone's only when a
//! quorum of the regions reporting sees the provider down; fewer make the monitor *regional*
//! ("Kimi fails from eu-west only"). Pure: the core feeds it the regions' reports and the
//! regions that have a live instance, and carries out the answer.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::machine::MonitorState;
use crate::store::RegionReport;
use crate::time::Millis;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_configured_quorum_of_one_makes_any_failing_region_an_outage() {
        let states = views(&[("eu", MonitorState::Down), ("us", MonitorState::Up)]);
        assert_eq!(
            judge(&states, &live(&["eu", "us"]), Some(1)),
            Judgement::Outage
        );
    }
}
