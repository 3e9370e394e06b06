//! Community feeds: RSS 2.0, RSS 1.0 (RDF), Atom and JSON Feed, read into plain items (title,
//! text, link, time) by one pure function over bytes, [`parse_feed`].
//!
//! XML goes through `quick-xml`'s tokenizer and a small walk that only looks at the children
//! of `<item>`/`<entry>`; no DTD is read and no entity is expanded beyond XML's five and
//! character references, so a hostile feed cannot make it fetch or grow anything. Sizes are
//! bounded: at most [`MAX_ITEMS`] items, [`MAX_TEXT`] characters per field, [`MAX_DEPTH`]
//! nested elements. Only UTF-8 is read (what feeds use in practice); anything else is an error
//! that says so.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde::Deserialize;

use super::{ParseError, excerpt, looks_like_html};
use crate::time::{Millis, parse_rfc2822, parse_rfc3339};

/// Items read from one feed; later ones are ignored (feeds hold their newest first, and a
/// window of reports never needs hundreds).
pub const MAX_ITEMS: usize = 500;
/// Characters kept of one field (a title, a post's text): enough to find a phrase.
pub const MAX_TEXT: usize = 4_096;
/// Elements nested deeper than this are not a feed.
pub const MAX_DEPTH: usize = 32;

const FEED: &str = "an RSS, Atom or JSON feed";

/// One post of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// What identifies it across reads: its id or guid, else its link, else its title.
    pub key: String,
    pub title: String,
    /// Summary or content, as written (markup included).
    pub text: String,
    pub link: Option<String>,
    /// Published (else updated); `None` when the feed gives no readable date.
    pub at: Option<Millis>,
}

/// [`FeedItem::key`], the same for every format: the id, else the link, else the title.
fn item_key(id: &str, link: Option<&str>, title: &str) -> String {
    [id, link.unwrap_or_default(), title]
        .into_iter()
        .find(|k| !k.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// Reads any of the supported formats, recognised by its first bytes.
pub fn parse_feed(bytes: &[u8]) -> Result<Vec<FeedItem>, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ParseError::Empty),
        Some(b'{') => parse_json_feed(bytes),
        Some(b'<') if looks_like_html(bytes) => Err(ParseError::Html { expected: FEED }),
        Some(b'<') => parse_xml_feed(bytes),
        Some(_) => Err(malformed("neither XML nor JSON")),
    }
}

fn malformed(detail: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        expected: FEED,
        detail: detail.into(),
    }
}

/// A feed's date: RFC 2822 (RSS) or RFC 3339 (Atom, JSON Feed, Dublin Core).
fn date(text: &str) -> Option<Millis> {
    parse_rfc2822(text).or_else(|| parse_rfc3339(text))
}

fn push_bounded(out: &mut String, text: &str) {
    let room = MAX_TEXT.saturating_sub(out.chars().count());
    out.extend(text.chars().take(room));
}

// === XML: RSS and Atom ===

/// Which child of an item is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Title,
    Text,
    Link,
    Id,
    Published,
    Updated,
}

/// Child element names of `<item>` and `<entry>` (local names, lower case) and what they hold.
const FIELDS: [(&str, Field); 12] = [
    ("title", Field::Title),
    ("description", Field::Text),
    ("summary", Field::Text),
    ("content", Field::Text),
    ("encoded", Field::Text),
    ("link", Field::Link),
    ("guid", Field::Id),
    ("id", Field::Id),
    ("pubdate", Field::Published),
    ("published", Field::Published),
    // Dublin Core's `dc:date` (RSS 1.0).
    ("date", Field::Published),
    ("updated", Field::Updated),
];

/// Root elements that make a document a feed.
const ROOTS: [&str; 3] = ["rss", "rdf", "feed"];

#[derive(Default)]
struct Draft {
    title: String,
    text: String,
    link: String,
    id: String,
    published: String,
    updated: String,
}

impl Draft {
    fn field(&mut self, field: Field) -> &mut String {
        match field {
            Field::Title => &mut self.title,
            Field::Text => &mut self.text,
            Field::Link => &mut self.link,
            Field::Id => &mut self.id,
            Field::Published => &mut self.published,
            Field::Updated => &mut self.updated,
        }
    }

    fn finish(self) -> FeedItem {
        let link = Some(self.link.trim().to_owned()).filter(|l| !l.is_empty());
        let title = self.title.trim().to_owned();
        FeedItem {
            key: item_key(self.id.trim(), link.as_deref(), &title),
            title,
            text: self.text.trim().to_owned(),
            link,
            at: date(&self.published).or_else(|| date(&self.updated)),
        }
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    let name = e.local_name();
    let name: &str = name.as_ref();
    name.to_ascii_lowercase()
}

/// Atom's `<link href="…" rel="alternate"/>`: the href when the link is the post itself.
fn atom_href(e: &BytesStart<'_>) -> Option<String> {
    let mut href = None;
    let mut alternate = true;
    for attr in e.attributes().flatten() {
        let key = attr.key.local_name();
        let key: &str = key.as_ref();
        let value = attr.normalized_value(XmlVersion::Implicit1_0).ok()?;
        match key {
            "href" => href = Some(value.into_owned()),
            "rel" => alternate = value == "alternate",
            _ => {}
        }
    }
    href.filter(|_| alternate)
}

fn parse_xml_feed(bytes: &[u8]) -> Result<Vec<FeedItem>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut root_seen = false;
    // The item being read and the depth of its element; the field being read.
    let mut item: Option<(Draft, usize)> = None;
    let mut field: Option<Field> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(e.to_string().chars().take(100).collect::<String>()))?;
        match event {
            Event::Eof => break,
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(malformed(format!(
                        "elements nested deeper than {MAX_DEPTH}"
                    )));
                }
                let name = local_name(&e);
                if !root_seen {
                    root(&name)?;
                    root_seen = true;
                    continue;
                }
                match &mut item {
                    None if name == "item" || name == "entry" => {
                        item = Some((Draft::default(), depth));
                    }
                    Some((draft, at)) if depth == *at + 1 => {
                        field = field_of(&name);
                        if field == Some(Field::Link)
                            && let Some(href) = atom_href(&e)
                            && draft.link.is_empty()
                        {
                            draft.link = href;
                            field = None;
                        }
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                // An empty root (`<feed/>`): a feed without items.
                if !root_seen {
                    root(&local_name(&e))?;
                    root_seen = true;
                    continue;
                }
                if let Some((draft, at)) = &mut item
                    && depth == *at
                    && local_name(&e) == "link"
                    && draft.link.is_empty()
                    && let Some(href) = atom_href(&e)
                {
                    draft.link = href;
                }
            }
            Event::End(_) => {
                if let Some((_, at)) = &item {
                    if depth == *at {
                        if let Some((draft, _)) = item.take() {
                            items.push(draft.finish());
                            if items.len() == MAX_ITEMS {
                                break;
                            }
                        }
                    } else if depth == *at + 1 {
                        field = None;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => append(&mut item, field, &t.xml10_content()),
            Event::CData(c) => append(&mut item, field, &c.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => predefined(&r.xml10_content()).to_owned(),
                };
                append(&mut item, field, &resolved);
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !root_seen {
        return Err(malformed("no root element"));
    }
    Ok(items)
}

fn root(name: &str) -> Result<(), ParseError> {
    if ROOTS.contains(&name) {
        Ok(())
    } else {
        Err(malformed(format!(
            "the root element is <{}>",
            excerpt(name)
        )))
    }
}

fn field_of(name: &str) -> Option<Field> {
    FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn append(item: &mut Option<(Draft, usize)>, field: Option<Field>, text: &str) {
    if let (Some((draft, _)), Some(field)) = (item, field) {
        push_bounded(draft.field(field), text);
    }
}

/// XML's five predefined entities; any other (undeclared, often HTML's `&nbsp;`) reads as a
/// space rather than failing the feed.
fn predefined(name: &str) -> &'static str {
    match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "quot" => "\"",
        "apos" => "'",
        _ => " ",
    }
}

// === JSON Feed ===

#[derive(Deserialize)]
struct RawJsonFeed {
    items: Vec<RawJsonItem>,
}

#[derive(Deserialize)]
struct RawJsonItem {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content_text: Option<String>,
    #[serde(default)]
    content_html: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    date_published: Option<String>,
    #[serde(default)]
    date_modified: Option<String>,
}

fn parse_json_feed(bytes: &[u8]) -> Result<Vec<FeedItem>, ParseError> {
    let raw: RawJsonFeed =
        serde_json::from_slice(bytes).map_err(|e| super::json_error(bytes, FEED, &e))?;
    Ok(raw
        .items
        .into_iter()
        .take(MAX_ITEMS)
        .map(|i| {
            let bounded = |s: Option<String>| {
                let mut out = String::new();
                push_bounded(&mut out, s.as_deref().unwrap_or_default().trim());
                out
            };
            let id = match i.id {
                Some(serde_json::Value::String(s)) => s,
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let title = bounded(i.title);
            let link = i.url.filter(|u| !u.trim().is_empty());
            FeedItem {
                key: item_key(&id, link.as_deref(), &title),
                title,
                text: bounded(i.content_text.or(i.summary).or(i.content_html)),
                link,
                at: i
                    .date_published
                    .as_deref()
                    .and_then(date)
                    .or_else(|| i.date_modified.as_deref().and_then(date)),
            }
        })
        .collect())
}
