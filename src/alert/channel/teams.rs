//! `teams` channel: Microsoft Teams through a Workflows webhook (Power Automate's "When a Teams
//! webhook request is received" trigger, e.g. the "Send webhook alerts to a channel" template).
//!
//! The old Office 365 connectors and their MessageCard format are retired; Workflows accept only
//! Adaptive Cards, wrapped in a message: `{"type":"message","attachments":[{"contentType":
//! "application/vnd.microsoft.card.adaptive","contentUrl":null,"content":<AdaptiveCard 1.4>}]}`.
//! The card has a title `TextBlock` coloured by severity, the summary, the advice, a `FactSet`
//! with event, timing and dedup key, then per monitor a `TextBlock` and a `FactSet` (verdict,
//! whose side, since, details), and an `Action.OpenUrl` to the status page when a URL is set.
//!
//! The webhook URL (`url_env`) carries a signature (`sig=`) and is a secret. The flow answers 202
//! Accepted (200 from some versions): any 2xx is delivered. Teams refuses messages over about
//! 28 KB, so the card shows fewer monitors (and counts the rest) until it fits.

use serde_json::{Map, Value, json};

use crate::alert::Severity;
use crate::alert::render::{Digest, ItemDigest, truncate};

#[cfg(test)]
mod tests;

/// Teams refuses messages over 28 KB; 24 KB leaves room for the envelope the flow adds.
const CARD_BYTES_MAX: usize = 24 * 1024;
/// Monitors listed at most; a card is read on a phone too.
const ITEMS_MAX: usize = 15;
const TITLE_MAX: usize = 300;
const SUMMARY_MAX: usize = 2000;
const ADVICE_MAX: usize = 1000;
const SUBJECT_MAX: usize = 200;
const EXPLANATION_MAX: usize = 500;
const KEY_MAX: usize = 200;

/// The largest message (most monitors listed) under [`CARD_BYTES_MAX`]. Each part is capped, so
/// the card with no monitor listed always fits; non-Latin text is what can push a full one over.
pub fn payload(digest: &Digest<'_>) -> Value {
    let mut shown = digest.items.len().min(ITEMS_MAX);
    loop {
        let message = envelope(card(digest, shown));
        let size = serde_json::to_vec(&message).map_or(0, |bytes| bytes.len());
        if size <= CARD_BYTES_MAX || shown == 0 {
            return message;
        }
        shown -= 1;
    }
}

fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn card(digest: &Digest<'_>, shown: usize) -> Value {
    let title = format!("{} {}", digest.icon, digest.title);
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": truncate(&title, TITLE_MAX),
            "size": "Large",
            "weight": "Bolder",
            "color": color(digest.severity),
            "wrap": true,
        }),
        text_block(&truncate(digest.summary, SUMMARY_MAX)),
    ];
    if !digest.advice.trim().is_empty() {
        let advice = format!("**What to do:** {}", truncate(digest.advice, ADVICE_MAX));
        body.push(text_block(&advice));
    }
    body.push(fact_set(&[
        ("Event", digest.event),
        ("When", &digest.timing),
        ("Dedup key", &truncate(digest.dedup_key, KEY_MAX)),
    ]));
    for item in &digest.items[..shown] {
        body.extend(item_blocks(item));
    }
    let more = digest.items.len() - shown;
    if more > 0 {
        body.push(text_block(&format!("…and {more} more monitors")));
    }

    let mut card = Map::new();
    card.insert(
        "$schema".into(),
        "http://adaptivecards.io/schemas/adaptive-card.json".into(),
    );
    card.insert("type".into(), "AdaptiveCard".into());
    card.insert("version".into(), "1.4".into());
    card.insert("body".into(), body.into());
    if let Some(url) = digest.url {
        let open = json!({ "type": "Action.OpenUrl", "title": "Open status page", "url": url });
        card.insert("actions".into(), json!([open]));
    }
    Value::Object(card)
}

fn item_blocks(item: &ItemDigest<'_>) -> [Value; 2] {
    [
        json!({
            "type": "TextBlock",
            "text": truncate(&item.subject, SUBJECT_MAX),
            "weight": "Bolder",
            "wrap": true,
            "separator": true,
        }),
        fact_set(&[
            ("Verdict", item.verdict),
            ("Whose side", item.blame),
            ("Since", &item.since),
            ("Details", &truncate(item.explanation, EXPLANATION_MAX)),
        ]),
    ]
}

fn text_block(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}

fn fact_set(facts: &[(&str, &str)]) -> Value {
    let facts: Vec<Value> = facts
        .iter()
        .map(|(title, value)| json!({ "title": title, "value": value }))
        .collect();
    json!({ "type": "FactSet", "facts": facts })
}

/// The Adaptive Card colour names for the title.
fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Attention",
        Severity::Warning => "Warning",
        Severity::Info => "Good",
    }
}
