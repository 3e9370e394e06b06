//! What `serve`'s poller publishes for the status page: per provider, what its sources say now,
//! how its official page compared with isdown over the retention window, and the official
//! incidents isdown's probes did not see ([`SourcesView`]). Plain data, built by the poller and read by the
//! page renderer from memory (a page request never reads the store for it).

use super::Corroboration;
use super::lead::LeadStats;
use crate::store::StoredOfficialIncident;

/// Official incidents not seen by isdown listed per provider; the count says how many more.
pub const UNSEEN_SHOWN: usize = 5;

/// One version of everything the sources say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcesView {
    /// Providers with sources, in config order.
    pub providers: Vec<ProviderView>,
}

impl SourcesView {
    pub fn provider(&self, id: &str) -> Option<&ProviderView> {
        self.providers.iter().find(|p| p.provider == id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderView {
    pub provider: String,
    /// Display name.
    pub name: String,
    /// What the sources say now.
    pub now: Corroboration,
    /// Whether an official page is configured (lead statistics mean nothing without one).
    pub has_official: bool,
    /// The official page's root, when one is configured.
    pub page: Option<String>,
    /// The aggregator's model, when one is configured.
    pub model: Option<String>,
    pub lead: LeadStats,
    /// The newest [`UNSEEN_SHOWN`] official incidents isdown did not see, newest first.
    pub unseen: Vec<StoredOfficialIncident>,
    /// All of them in the window.
    pub unseen_total: usize,
}
