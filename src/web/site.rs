//! What the public face of `isdown serve` knows of the config: provider display names, the
//! `[web]` settings, and which upstream addresses to hide when `hide_urls` is on.
//!
//! It holds no secrets: it is built from the config by copying names and URLs only (never a
//! key), and it is swapped whole when the config is reloaded, so a handler always sees one
//! consistent version. The status page, badges, feed and Statuspage JSON read it; nothing in
//! here does I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::provider::Provider;

/// `[web]`: the public face of `isdown serve`.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Public address of the status page (no trailing slash); alerts link to it when set.
    pub public_url: Option<String>,
    /// Keep upstream base URLs off the public pages and JSON.
    pub hide_urls: bool,
}

/// Stands in for an upstream address in public text when `hide_urls` is on.
pub const HIDDEN: &str = "[upstream]";

/// A provider as the public pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFace {
    /// Display name from the catalog or config, e.g. `Kimi`.
    pub name: String,
    /// Upstream base URL, e.g. `https://api.moonshot.ai/v1`.
    pub base_url: String,
    /// The provider's own public status page, when the catalog knows one.
    pub status_page: Option<String>,
    /// Whether its official page is read (`status_url`): only then can an incident be
    /// "not acknowledged officially".
    pub official_read: bool,
}

/// One version of the public settings.
#[derive(Debug, Clone, Default)]
pub struct SiteInfo {
    pub web: WebSettings,
    /// Provider id → how it is shown.
    pub providers: BTreeMap<String, ProviderFace>,
    /// Text to replace by [`HIDDEN`] when `hide_urls` is on, longest first (a base URL before
    /// its host, so no half-hidden URL is left behind).
    hidden: Vec<String>,
}

impl SiteInfo {
    pub fn new(web: WebSettings, providers: BTreeMap<String, ProviderFace>) -> SiteInfo {
        let mut hidden = Vec::new();
        if web.hide_urls {
            for face in providers.values() {
                let base = face.base_url.trim_end_matches('/');
                hidden.push(base.to_owned());
                if let Some(rest) = base.split_once("://").map(|(_, rest)| rest) {
                    let authority = rest.split('/').next().unwrap_or(rest);
                    hidden.push(authority.to_owned());
                    if let Some((host, _port)) = authority.rsplit_once(':') {
                        hidden.push(host.to_owned());
                    }
                }
            }
            hidden.retain(|needle| !needle.is_empty());
            hidden.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            hidden.dedup();
        }
        SiteInfo {
            web,
            providers,
            hidden,
        }
    }

    /// From the `[web]` settings and the configured providers.
    pub fn of(
        web: &WebSettings,
        providers: &[Arc<Provider>],
        corroboration: &crate::corroborate::Settings,
    ) -> SiteInfo {
        let providers = providers
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    ProviderFace {
                        name: p.name.clone(),
                        base_url: p.base_url.as_str().to_owned(),
                        status_page: p.status_page.clone(),
                        official_read: corroboration
                            .of(&p.id)
                            .is_some_and(|s| s.official.is_some()),
                    },
                )
            })
            .collect();
        SiteInfo::new(web.clone(), providers)
    }

    /// The display name of a provider id; the id itself when the config does not know it (an
    /// incident of a provider removed since).
    pub fn name<'a>(&'a self, provider: &'a str) -> &'a str {
        self.providers
            .get(provider)
            .map_or(provider, |p| p.name.as_str())
    }

    /// The upstream URL to show, or `None` when `hide_urls` is on.
    pub fn upstream(&self, provider: &str) -> Option<&str> {
        if self.web.hide_urls {
            return None;
        }
        self.providers.get(provider).map(|p| p.base_url.as_str())
    }

    /// Public text with upstream addresses hidden when `hide_urls` is on. Error samples and
    /// explanations may quote a host ("503 from api.moonshot.ai"); keys were already redacted
    /// by the monitor before anything was stored.
    pub fn public_text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.hidden {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), HIDDEN);
            }
        }
        out
    }

    /// `public_url` without a trailing slash, or "" (links are then relative to the host).
    pub fn base(&self) -> &str {
        self.web
            .public_url
            .as_deref()
            .map_or("", |u| u.trim_end_matches('/'))
    }
}

/// Shared, swappable [`SiteInfo`].
#[derive(Debug, Clone, Default)]
pub struct Site {
    inner: Arc<RwLock<Arc<SiteInfo>>>,
}

impl Site {
    pub fn new(info: SiteInfo) -> Site {
        Site {
            inner: Arc::new(RwLock::new(Arc::new(info))),
        }
    }

    /// The current version; cheap (an `Arc` clone under a short read lock).
    pub fn get(&self) -> Arc<SiteInfo> {
        // Writers only swap a whole `Arc`, so a poisoned lock still holds a consistent value.
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings (after a config reload).
    pub fn set(&self, info: SiteInfo) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(info);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn face(name: &str, base_url: &str) -> ProviderFace {
        ProviderFace {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            status_page: None,
            official_read: false,
        }
    }

    fn site(hide_urls: bool) -> SiteInfo {
        SiteInfo::new(
            WebSettings {
                public_url: Some("https://status.example.com/".into()),
                hide_urls,
            },
            BTreeMap::from([
                (
                    "kimi".to_owned(),
                    face("Kimi", "https://api.moonshot.ai/v1"),
                ),
                ("mock".to_owned(), face("Mock", "http://127.0.0.1:9001/v1/")),
            ]),
        )
    }

    #[test]
    fn hide_urls_removes_base_urls_and_hosts_from_public_text() {
        let text = "503 from api.moonshot.ai; POST https://api.moonshot.ai/v1/chat/completions; \
                    reset by 127.0.0.1:9001 and 127.0.0.1";
        assert_eq!(
            site(true).public_text(text),
            "503 from [upstream]; POST [upstream]/chat/completions; reset by [upstream] and \
             [upstream]"
        );
        assert_eq!(site(false).public_text(text), text);
        assert_eq!(site(true).upstream("kimi"), None);
        assert_eq!(
            site(false).upstream("kimi"),
            Some("https://api.moonshot.ai/v1")
        );
    }

    #[test]
    fn names_fall_back_to_the_id_and_the_base_loses_its_slash() {
        let info = site(false);
        assert_eq!(info.name("kimi"), "Kimi");
        assert_eq!(info.name("gone"), "gone");
        assert_eq!(info.base(), "https://status.example.com");
    }
}
