//! `slack` channel: Slack incoming webhooks.
//!
//! A message is one POST of JSON to the webhook URL (`url_env`: the URL itself is the credential)
//! with `text`, the fallback shown in notifications, and `blocks` (Block Kit): a `header` with the
//! title, a `section` with summary, advice and timing, one `section` per monitor (text and
//! `fields`), and a `context` with the event, dedup key and status-page link. Block Kit limits are
//! enforced here (header 150 characters, section text 3,000, field 2,000, 50 blocks), so a long
//! provider message is cut rather than the whole message refused. Every interpolated value is
//! escaped (`&`, `<`, `>`), so a provider's error text cannot write `<!channel>` or a link. Webhooks
//! of Slack apps post to the channel picked at install time and ignore `channel`, `username` and
//! `icon_*`, so the config has no such keys. Slack answers 200 `ok`; 400/403/404/410 with an error
//! word (permanent); 5xx (retryable). The words come from `alert::render`.

use serde_json::{Value, json};

use crate::alert::render::{Digest, ItemDigest, escape_markup, truncate};

#[cfg(test)]
mod tests;

/// Block Kit: header text (plain_text) at most 150 characters.
const HEADER_MAX: usize = 150;
/// Block Kit: section `text` at most 3,000 characters.
const SECTION_MAX: usize = 3000;
/// Block Kit: at most 50 blocks in a message.
const BLOCKS_MAX: usize = 50;
/// Blocks every message has besides the monitors: header, overview and context.
const FIXED_BLOCKS: usize = 3;
/// Budgets inside the overview section: together with the markup they stay under
/// [`SECTION_MAX`], and each part keeps room when another is long.
const SUMMARY_MAX: usize = 1500;
const ADVICE_MAX: usize = 1200;
const TIMING_MAX: usize = 200;
/// Budgets inside a monitor's section (subject and explanation, under [`SECTION_MAX`]).
const SUBJECT_MAX: usize = 200;
const EXPLANATION_MAX: usize = 2500;
/// Markup around the budgeted parts of a section ("*What to do:* ", emphasis, line breaks).
const SECTION_MARKUP: usize = 32;
const _: () = assert!(SUMMARY_MAX + ADVICE_MAX + TIMING_MAX + SECTION_MARKUP <= SECTION_MAX);
const _: () = assert!(SUBJECT_MAX + EXPLANATION_MAX + SECTION_MARKUP <= SECTION_MAX);
/// The fallback `text`: notifications show a line or two; Slack's own cap is far higher.
const FALLBACK_TITLE_MAX: usize = 300;
const FALLBACK_SUMMARY_MAX: usize = 1500;
/// The dedup key is ours and short; the cap only guards the context block.
const KEY_MAX: usize = 200;

/// The webhook body: `text` always (notifications, and clients that do not render blocks),
/// `blocks` for the message itself.
pub fn payload(digest: &Digest<'_>) -> Value {
    let room = BLOCKS_MAX - FIXED_BLOCKS;
    // One block goes to the "…and N more" note when the monitors do not all fit.
    let shown = if digest.items.len() <= room {
        digest.items.len()
    } else {
        room - 1
    };
    let mut blocks = Vec::with_capacity(FIXED_BLOCKS + shown + 1);
    blocks.push(header(digest));
    blocks.push(section(overview(digest)));
    blocks.extend(digest.items[..shown].iter().map(item_section));
    if shown < digest.items.len() {
        let more = digest.items.len() - shown;
        blocks.push(section(format!("…and {more} more monitors")));
    }
    blocks.push(context(digest));
    json!({ "text": fallback(digest), "blocks": blocks })
}

fn header(digest: &Digest<'_>) -> Value {
    let text = format!("{} {}", digest.icon, digest.title);
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&text, HEADER_MAX), "emoji": true },
    })
}

fn overview(digest: &Digest<'_>) -> String {
    let mut text = escape_markup(digest.summary, SUMMARY_MAX);
    if !digest.advice.trim().is_empty() {
        text.push_str("\n\n*What to do:* ");
        text.push_str(&escape_markup(digest.advice, ADVICE_MAX));
    }
    text.push_str("\n_");
    text.push_str(&escape_markup(&digest.timing, TIMING_MAX));
    text.push('_');
    text
}

fn item_section(item: &ItemDigest<'_>) -> Value {
    let text = format!(
        "*{}*\n{}",
        escape_markup(&item.subject, SUBJECT_MAX),
        escape_markup(item.explanation, EXPLANATION_MAX)
    );
    json!({
        "type": "section",
        "text": mrkdwn(text),
        "fields": [
            mrkdwn(format!("*Verdict*\n`{}`", item.verdict)),
            mrkdwn(format!("*Whose side*\n{}", item.blame)),
            mrkdwn(format!("*Since*\n{}", item.since)),
        ],
    })
}

fn context(digest: &Digest<'_>) -> Value {
    let mut elements = vec![mrkdwn(format!(
        "{} · dedup key `{}`",
        digest.event,
        escape_markup(digest.dedup_key, KEY_MAX)
    ))];
    if let Some(url) = digest.url {
        elements.push(mrkdwn(format!("<{}|Status page>", link_target(url))));
    }
    json!({ "type": "context", "elements": elements })
}

fn fallback(digest: &Digest<'_>) -> String {
    format!(
        "{} {}: {}",
        digest.icon,
        escape_markup(digest.title, FALLBACK_TITLE_MAX),
        escape_markup(digest.summary, FALLBACK_SUMMARY_MAX)
    )
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

/// A URL inside `<url|label>`: the markup characters escaped, and `|`, which would end the URL,
/// percent-encoded.
fn link_target(url: &str) -> String {
    escape_markup(url, usize::MAX).replace('|', "%7C")
}
