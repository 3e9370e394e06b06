//! The incident vocabulary every part shares: what kind of trouble an incident is.
//!
//! A leaf module: the monitor opens incidents of these kinds, the store keeps them, alerts route
//! by them and the pages and API print them. It imports nothing of isdown's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// The provider is failing (provider-blamed verdicts).
    Outage,
    /// The user's account or request is failing (bad key, quota, retired model, rate limit).
    SetupProblem,
    /// isdown's own network is down: every monitor failed at the network level at once.
    Network,
    /// With instances in several regions: the provider fails from some of them, fewer than
    /// the quorum that makes an outage ("Kimi fails from eu-west only").
    Regional,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 4] = [
        IncidentKind::Outage,
        IncidentKind::SetupProblem,
        IncidentKind::Network,
        IncidentKind::Regional,
    ];

    /// The name in JSON, config and the database (a contract).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Outage => "outage",
            IncidentKind::SetupProblem => "setup_problem",
            IncidentKind::Network => "network",
            IncidentKind::Regional => "regional",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentKind> {
        IncidentKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}
