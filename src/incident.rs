//! The incident vocabulary every part shares: what kind of trouble an incident is.
//!
//! A leaf module: the monitor opens incidents of these kinds, the store keeps them, alerts route
//! by them and the pages and API print them — and what a `network` incident is filed under. It
//! imports nothing of isdown's.

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

/// What an instance files its `network` incident under: `"*"` (it concerns every monitor)
/// without a region, `"*/REGION"` in a named one, so that with several regions each region's
/// own network has its own incident and a broken uplink in one region is not another's.
pub fn network_key(region: Option<&str>) -> String {
    match region {
        None => NETWORK_ALL.to_owned(),
        Some(region) => format!("{NETWORK_ALL}/{region}"),
    }
}

/// The region a `network` incident's key names (`None` for `"*"`).
pub fn network_region(key: &str) -> Option<&str> {
    key.strip_prefix(NETWORK_ALL)?.strip_prefix('/')
}

/// The key of the network incident of an instance without a region, and the prefix of every
/// region's.
const NETWORK_ALL: &str = "*";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_region_files_its_network_incident_under_its_own_key() {
        assert_eq!(network_key(None), "*");
        assert_eq!(network_key(Some("eu-west")), "*/eu-west");
        assert_eq!(network_region("*/eu-west"), Some("eu-west"));
        assert_eq!(network_region("*"), None);
        assert_eq!(network_region("kimi-chat"), None);
    }
}
