//! The Atom feed of incidents, `/feed.atom`: the 50 newest, open ones included, for feed
//! readers and chat integrations that poll.
//!
//! Built from stored incidents only (never a key: error samples were redacted before they were
//! stored, and upstream addresses are hidden here when `hide_urls` is on). Links are absolute
//! when `[web] public_url` is set, relative otherwise. Pure: `views.rs` renders it on change.

use askama::Template;

use super::site::SiteInfo;
use super::text;
use crate::incident::IncidentKind;
use crate::store::Incident;
use crate::time::{Millis, rfc3339};

/// Entries in the feed: readers keep what they have seen, so a short feed loses nothing.
pub const FEED_ENTRIES: u32 = 50;

pub struct Entry {
    pub id: String,
    pub title: String,
    pub published: String,
    pub updated: String,
    pub link: String,
    pub content: String,
}

#[derive(Template)]
#[template(path = "feed.xml")]
pub struct Feed {
    pub id: String,
    pub base: String,
    pub updated: String,
    pub entries: Vec<Entry>,
}

/// A stable id per incident: with a public URL, the incident's anchor there; without one, a
/// URN (an Atom id must never change, and a relative URL is no id).
fn entry_id(site: &SiteInfo, id: i64) -> String {
    match site.base() {
        "" => format!("urn:isdown:incident:{id}"),
        base => format!("{base}/incidents#incident-{id}"),
    }
}

fn entry(site: &SiteInfo, i: &Incident, now: Millis) -> Entry {
    let (name, link) = match i.kind {
        IncidentKind::Network => ("All providers", format!("{}/incidents", site.base())),
        _ => (
            site.name(&i.provider),
            format!("{}/monitors/{}", site.base(), i.monitor),
        ),
    };
    let duration = text::duration(i.ended_at.unwrap_or(now) - i.started_at);
    let state = match i.ended_at {
        Some(_) => format!("resolved after {duration}"),
        None => format!("ongoing for {duration}"),
    };
    let mut content = format!(
        "{} of {name} ({}), {state}. Started {}. Whose side: {}. {} failed probes.",
        text::kind_label(i.kind),
        text::verdict_words(i.verdict),
        text::datetime(i.started_at),
        text::incident_side(i.kind, i.verdict),
        i.failed_probes,
    );
    if let Some(sample) = i.last_error.as_deref().or(i.first_error.as_deref()) {
        content.push_str(&format!(" Last error: {}", site.public_text(sample)));
    }
    Entry {
        id: entry_id(site, i.id),
        title: format!(
            "{name}: {} — {state}",
            text::incident_title(i.kind, i.verdict)
        ),
        published: rfc3339(i.started_at),
        updated: rfc3339(i.ended_at.unwrap_or(i.started_at)),
        link,
        content,
    }
}

/// The feed for `incidents` (newest first). Its `updated` is the newest entry's, so an
/// unchanged history gives identical bytes; `now` only stands in when there is no incident.
pub fn feed_of(site: &SiteInfo, incidents: &[Incident], now: Millis) -> Feed {
    let updated = incidents
        .iter()
        .map(|i| i.ended_at.unwrap_or(i.started_at))
        .max()
        .unwrap_or(now);
    Feed {
        id: match site.base() {
            "" => "urn:isdown:incidents".to_owned(),
            base => format!("{base}/feed.atom"),
        },
        base: site.base().to_owned(),
        updated: rfc3339(updated),
        entries: incidents.iter().map(|i| entry(site, i, now)).collect(),
    }
}
