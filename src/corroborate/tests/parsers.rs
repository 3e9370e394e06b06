//! The parsers against the documented shapes, and against what they must refuse.

use super::{T0, or_endpoints, sp_incident, sp_summary};
use crate::corroborate::aggregator::{View, aggregator_reading, parse_openrouter_endpoints};
use crate::corroborate::feed::{MAX_ITEMS, MAX_TEXT, parse_feed};
use crate::corroborate::statuspage::{
    Indicator, official_reading, parse_statuspage_incidents, parse_statuspage_summary,
};
use crate::corroborate::{AggregatorSource, OfficialSource, ParseError};
use crate::time::MINUTE_MS;

fn source(components: &[&str]) -> OfficialSource {
    OfficialSource {
        root: "https://status.moonshot.cn".parse().unwrap(),
        components: components.iter().map(|c| (*c).to_owned()).collect(),
    }
}

const KIMI: [(&str, &str, &str); 3] = [
    ("c1", "Open API", "operational"),
    ("c2", "K2 Model", "operational"),
    ("c3", "Website", "operational"),
];

fn summary_with(statuses: [&str; 3], incidents: Vec<serde_json::Value>) -> Vec<u8> {
    let components: Vec<(&str, &str, &str)> = KIMI
        .iter()
        .zip(statuses)
        .map(|((id, name, _), status)| (*id, *name, status))
        .collect();
    serde_json::to_vec(&sp_summary("none", &components, incidents)).unwrap()
}

// === Statuspage ===

#[test]
fn an_operational_page_reads_operational_with_no_incidents() {
    let summary = parse_statuspage_summary(&summary_with(["operational"; 3], vec![])).unwrap();
    let whole = official_reading(&summary, &source(&[])).unwrap();
    assert_eq!(whole.indicator, Indicator::None);
    assert_eq!(whole.description, "All Systems Operational");
    assert_eq!(whole.page, "https://status.moonshot.cn");
    let narrowed = official_reading(&summary, &source(&["Open API", "k2 model"])).unwrap();
    assert_eq!(narrowed.indicator, Indicator::None);
    assert_eq!(narrowed.description, "operational");
    assert_eq!(
        narrowed.components,
        vec![
            ("Open API".to_owned(), "operational"),
            ("K2 Model".to_owned(), "operational")
        ]
    );
}

#[test]
fn each_component_state_maps_onto_the_indicator_scale() {
    for (status, indicator, words) in [
        (
            "degraded_performance",
            Indicator::Minor,
            "degraded performance",
        ),
        ("partial_outage", Indicator::Major, "partial outage"),
        ("major_outage", Indicator::Critical, "major outage"),
        (
            "under_maintenance",
            Indicator::Maintenance,
            "under maintenance",
        ),
    ] {
        let summary = parse_statuspage_summary(&summary_with(
            [status, "operational", "operational"],
            vec![],
        ))
        .unwrap();
        let reading = official_reading(&summary, &source(&["Open API", "K2 Model"])).unwrap();
        assert_eq!(reading.indicator, indicator, "{status}");
        assert_eq!(reading.description, format!("Open API: {words}"));
    }
}

#[test]
fn components_outside_the_configured_ones_do_not_count() {
    let summary = parse_statuspage_summary(&summary_with(
        ["operational", "operational", "major_outage"],
        vec![],
    ))
    .unwrap();
    let reading = official_reading(&summary, &source(&["Open API"])).unwrap();
    assert_eq!(reading.indicator, Indicator::None);
    // A component may be named by its id too.
    let by_id = official_reading(&summary, &source(&["c3"])).unwrap();
    assert_eq!(by_id.indicator, Indicator::Critical);
}

#[test]
fn an_open_incident_on_a_configured_component_is_listed_and_raises_the_indicator() {
    let incidents = vec![
        sp_incident(
            "inc1",
            "Elevated API error rates",
            "major",
            "2026-06-19T12:40:00.000+08:00",
            None,
            &[("c1", "Open API")],
        ),
        // Another component's incident, and a resolved one: neither is listed.
        sp_incident(
            "inc2",
            "Website slow",
            "minor",
            "2026-06-19T04:00:00Z",
            None,
            &[("c3", "Website")],
        ),
        sp_incident(
            "inc3",
            "Earlier blip",
            "minor",
            "2026-06-19T03:00:00Z",
            Some("2026-06-19T03:20:00Z"),
            &[],
        ),
    ];
    let summary = parse_statuspage_summary(&summary_with(["operational"; 3], incidents)).unwrap();
    let reading = official_reading(&summary, &source(&["Open API"])).unwrap();
    assert_eq!(reading.indicator, Indicator::Major);
    assert_eq!(reading.description, "major outage (open incident)");
    assert_eq!(reading.incidents.len(), 1);
    let open = &reading.incidents[0];
    assert_eq!(open.name, "Elevated API error rates");
    assert_eq!(open.impact, Indicator::Major);
    assert_eq!(open.started_at, T0 - 10 * MINUTE_MS);
    assert_eq!(open.url.as_deref(), Some("https://stspg.io/inc1"));
}

#[test]
fn incidents_json_lists_resolved_incidents_with_their_times() {
    let doc = serde_json::json!({
        "page": {"id": "x"},
        "incidents": [
            sp_incident("a", "API down", "critical", "2026-06-19T04:50:00Z", Some("2026-06-19T05:50:00Z"), &[]),
        ],
    });
    let incidents = parse_statuspage_incidents(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(incidents[0].created_at, T0);
    assert_eq!(incidents[0].resolved_at, Some(T0 + 60 * MINUTE_MS));
    assert!(incidents[0].is_over());
}

#[test]
fn a_renamed_component_is_a_reason_not_a_silent_operational() {
    let summary = parse_statuspage_summary(&summary_with(["operational"; 3], vec![])).unwrap();
    let e = official_reading(&summary, &source(&["Public API"])).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("none of Public API is listed"), "{text}");
    assert!(text.contains("Open API, K2 Model, Website"), "{text}");
}

#[test]
fn html_garbage_and_changed_formats_are_refused_with_a_reason() {
    let html = b"<!DOCTYPE html><html><body>Just a moment...</body></html>";
    assert_eq!(
        parse_statuspage_summary(html),
        Err(ParseError::Html {
            expected: "Statuspage summary JSON"
        })
    );
    assert_eq!(parse_statuspage_summary(b"  \n"), Err(ParseError::Empty));
    let garbage = parse_statuspage_summary(b"\x00\xff\x12garbage").unwrap_err();
    assert!(matches!(garbage, ParseError::Malformed { .. }), "{garbage}");
    // A summary without `status`: the format changed.
    let changed = parse_statuspage_summary(br#"{"page":{},"components":[]}"#).unwrap_err();
    assert!(changed.to_string().contains("status"), "{changed}");
    // An indicator outside the documented ones.
    let odd = serde_json::to_vec(&sp_summary("catastrophic", &[], vec![])).unwrap();
    let summary = parse_statuspage_summary(&odd).unwrap();
    let e = official_reading(&summary, &source(&[])).unwrap_err();
    assert_eq!(
        e,
        ParseError::Unknown {
            field: "status indicator",
            value: "catastrophic".into()
        }
    );
    // A date that is not RFC 3339.
    let mut bad_date = sp_summary(
        "none",
        &[],
        vec![sp_incident("a", "x", "minor", "yesterday", None, &[])],
    );
    bad_date["incidents"][0]["created_at"] = "yesterday".into();
    let e = parse_statuspage_summary(&serde_json::to_vec(&bad_date).unwrap()).unwrap_err();
    assert!(e.to_string().contains("created_at"), "{e}");
}

// === OpenRouter ===

fn kimi_at_openrouter(endpoint: Option<&str>) -> AggregatorSource {
    AggregatorSource {
        model: "moonshotai/kimi-k2.6".into(),
        endpoint: endpoint.map(str::to_owned),
    }
}

#[test]
fn the_providers_endpoint_is_operational_degraded_or_down_by_its_uptime_and_status() {
    for (status, uptime, view) in [
        (0, Some(99.5), View::Operational),
        (0, None, View::Operational),
        (-2, Some(99.5), View::Degraded),
        (0, Some(80.0), View::Degraded),
        (0, Some(12.0), View::Down),
    ] {
        let doc = or_endpoints(
            "moonshotai/kimi-k2.6",
            &[
                ("Moonshot AI", "moonshotai", status, uptime),
                ("DeepInfra", "deepinfra/fp4", 0, Some(100.0)),
            ],
        );
        let endpoints = parse_openrouter_endpoints(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let reading =
            aggregator_reading(&endpoints, &kimi_at_openrouter(Some("moonshot ai"))).unwrap();
        assert_eq!(reading.view, view, "{status} {uptime:?}");
        assert_eq!(reading.endpoints, 2);
        assert_eq!(
            reading.endpoint.unwrap().uptime_last_30m,
            uptime,
            "the endpoint's own figures are kept"
        );
    }
}

#[test]
fn without_an_endpoint_the_model_is_as_good_as_its_best_upstream() {
    let doc = or_endpoints(
        "moonshotai/kimi-k2.6",
        &[
            ("Moonshot AI", "moonshotai", 0, Some(10.0)),
            ("DeepInfra", "deepinfra/fp4", 0, Some(97.0)),
        ],
    );
    let endpoints = parse_openrouter_endpoints(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let reading = aggregator_reading(&endpoints, &kimi_at_openrouter(None)).unwrap();
    assert_eq!(reading.view, View::Operational);
    assert_eq!((reading.operational, reading.endpoints), (1, 2));
    // An endpoint is found by its tag's provider part too.
    let deepinfra = aggregator_reading(&endpoints, &kimi_at_openrouter(Some("deepinfra"))).unwrap();
    assert_eq!(deepinfra.endpoint.unwrap().provider_name, "DeepInfra");
}

#[test]
fn an_unlisted_endpoint_and_odd_documents_are_refused_with_a_reason() {
    let doc = or_endpoints("m", &[("DeepInfra", "deepinfra", 0, Some(99.0))]);
    let endpoints = parse_openrouter_endpoints(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let e = aggregator_reading(&endpoints, &kimi_at_openrouter(Some("Moonshot AI"))).unwrap_err();
    assert!(
        e.to_string().contains("lists no \"Moonshot AI\" endpoint"),
        "{e}"
    );
    assert!(e.to_string().contains("DeepInfra"), "{e}");
    assert!(aggregator_reading(&[], &kimi_at_openrouter(None)).is_err());
    assert_eq!(
        parse_openrouter_endpoints(b"<html><head></head></html>"),
        Err(ParseError::Html {
            expected: "OpenRouter endpoints JSON"
        })
    );
    // The old models list, or an error object: not the endpoints shape.
    assert!(parse_openrouter_endpoints(br#"{"data":[{"id":"m"}]}"#).is_err());
    assert!(parse_openrouter_endpoints(br#"{"error":{"code":404,"message":"x"}}"#).is_err());
    let odd = br#"{"data":{"endpoints":[{"provider_name":"X","status":{"a":1}}]}}"#;
    assert!(matches!(
        parse_openrouter_endpoints(odd),
        Err(ParseError::Unknown { .. })
    ));
}

// === feeds ===

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>r/LocalLLaMA search</title><link>https://www.reddit.com/r/LocalLLaMA</link>
<item>
  <title>Is Kimi down for anyone else?</title>
  <link>https://www.reddit.com/r/LocalLLaMA/comments/abc/</link>
  <guid isPermaLink="false">t3_abc</guid>
  <pubDate>Fri, 19 Jun 2026 04:45:00 +0000</pubDate>
  <description><![CDATA[<p>Getting <b>503</b> since 10 minutes</p>]]></description>
</item>
<item>
  <title>Kimi K2.6 &amp; tool calls &#8212; tips</title>
  <link>https://www.reddit.com/r/LocalLLaMA/comments/def/</link>
  <pubDate>Thu, 18 Jun 2026 12:00:00 GMT</pubDate>
  <content:encoded>Long post&nbsp;here</content:encoded>
</item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Search</title>
  <entry>
    <id>tag:example.com,2026:1</id>
    <title type="text">kimi down again</title>
    <link rel="alternate" href="https://example.com/1"/>
    <link rel="replies" href="https://example.com/1/replies"/>
    <updated>2026-06-19T12:48:00+08:00</updated>
    <summary>API returns 503</summary>
  </entry>
  <entry>
    <title>no date here</title>
    <link href="https://example.com/2"/>
  </entry>
</feed>"#;

#[test]
fn rss_items_are_read_with_entities_cdata_and_dates() {
    let items = parse_feed(RSS.as_bytes()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].title, "Is Kimi down for anyone else?");
    assert_eq!(items[0].key, "t3_abc");
    assert_eq!(items[0].at, Some(T0 - 5 * MINUTE_MS));
    assert!(items[0].text.contains("<b>503</b>"), "{}", items[0].text);
    assert_eq!(items[1].title, "Kimi K2.6 & tool calls — tips");
    assert_eq!(
        items[1].key,
        "https://www.reddit.com/r/LocalLLaMA/comments/def/"
    );
    assert_eq!(items[1].text, "Long post here");
}

#[test]
fn atom_entries_take_their_alternate_link_and_published_or_updated_time() {
    let items = parse_feed(ATOM.as_bytes()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].link.as_deref(), Some("https://example.com/1"));
    assert_eq!(items[0].at, Some(T0 - 2 * MINUTE_MS));
    assert_eq!(items[0].key, "tag:example.com,2026:1");
    assert_eq!(items[1].at, None);
    assert_eq!(items[1].link.as_deref(), Some("https://example.com/2"));
}

#[test]
fn rss_1_and_json_feed_are_read_too() {
    let rdf = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<item rdf:about="https://example.com/a"><title>Kimi down</title><link>https://example.com/a</link><dc:date>2026-06-19T04:50:00Z</dc:date></item>
</rdf:RDF>"#;
    let items = parse_feed(rdf.as_bytes()).unwrap();
    assert_eq!(
        (items[0].title.as_str(), items[0].at),
        ("Kimi down", Some(T0))
    );
    let json = br#"{"version":"https://jsonfeed.org/version/1.1","title":"x","items":[
        {"id":"1","url":"https://example.com/1","title":"kimi down?","content_text":"503s","date_published":"2026-06-19T04:50:00Z"},
        {"id":2,"content_html":"<p>hi</p>"}]}"#;
    let items = parse_feed(json).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0].key.as_str(), items[0].at), ("1", Some(T0)));
    assert_eq!(items[1].key, "2");
    assert_eq!(items[1].text, "<p>hi</p>");
}

#[test]
fn bad_feeds_are_refused_with_a_reason() {
    let reason = |bytes: &[u8]| parse_feed(bytes).unwrap_err().to_string();
    assert_eq!(
        reason(b"<!doctype html><html><body>blocked</body></html>"),
        "an HTML page, not an RSS, Atom or JSON feed"
    );
    assert_eq!(reason(b""), "empty answer");
    assert!(reason(b"hello world").contains("neither XML nor JSON"));
    assert!(reason(b"<rss><channel><item><title>x</channel></rss>").contains("not an RSS"));
    assert!(reason(b"<svg xmlns='http://www.w3.org/2000/svg'/>").contains("root element is <svg>"));
    assert!(reason(b"<rss>\xff\xfe</rss>").contains("not UTF-8"));
    assert!(reason(br#"{"items": 5}"#).contains("not an RSS, Atom or JSON feed"));
    let deep = format!("<rss>{}{}</rss>", "<a>".repeat(40), "</a>".repeat(40));
    assert!(reason(deep.as_bytes()).contains("nested deeper"));
    // Internal entities are not expanded: a "billion laughs" document stays small.
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss><channel><item><title>&b;&b;&b;</title></item></channel></rss>"#;
    let items = parse_feed(laughs.as_bytes()).unwrap();
    assert!(items[0].title.len() < 10, "{}", items[0].title);
}

#[test]
fn feeds_are_bounded_in_items_and_text() {
    let long = "x".repeat(3 * MAX_TEXT);
    let item = format!("<item><title>{long}</title><guid>g</guid></item>");
    let doc = format!(
        "<rss><channel>{}</channel></rss>",
        item.repeat(MAX_ITEMS + 20)
    );
    let items = parse_feed(doc.as_bytes()).unwrap();
    assert_eq!(items.len(), MAX_ITEMS);
    assert_eq!(items[0].title.chars().count(), MAX_TEXT);
}
