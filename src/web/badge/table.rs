//! What every monitor's badges are drawn from, kept with each render instead of the badges
//! themselves: a monitor's id, provider, state and 30-day uptime (about a hundred bytes), where
//! two drawn SVGs were ~3 KB. A badge is drawn from its row when it is requested.
//!
//! The HTTP contract is what it was when every badge was pre-rendered: the same bytes, a strong
//! `ETag` that is the digest of those bytes (so `If-None-Match` still gets a 304), and a
//! `Last-Modified` that is the render in which the badge last began to say what it says now.
//! That instant is the one thing a row keeps per badge; whether a badge changed is decided by
//! comparing what it says ([`Face`]), not its bytes, so no render draws a badge.
//!
//! Built by `views.rs` from the renderer's inputs; does no I/O.

use std::sync::Arc;

use super::Face;
use crate::monitor::health::MonitorHealth;
use crate::monitor::machine::MonitorState;
use crate::time::Millis;
use crate::web::page::MonitorHistory;
use crate::web::rendered::{self, Rendered};
use crate::web::site::SiteInfo;

/// What one badge says, worked out from the table and one of its rows.
type Says = for<'a> fn(&'a BadgeTable, &'a Row) -> Face<'a>;

/// Every badge a monitor has: its route and what it says. Indices into this table are what
/// [`BadgeTable::draw`] takes.
pub const BADGES: [(&str, Says); 2] = [
    ("/badge/{monitor}/status.svg", |table, row| {
        super::status_face(table.site.name(&row.provider), row.state, table.stale)
    }),
    ("/badge/{monitor}/uptime-30d.svg", |_, row| {
        super::uptime_face(row.uptime_30d)
    }),
];

/// One monitor's part of the table.
pub struct Row {
    id: Box<str>,
    provider: Box<str>,
    state: MonitorState,
    uptime_30d: Option<f64>,
    /// When each badge (in [`BADGES`] order) began to say what it says now: its `Last-Modified`.
    since: [Millis; BADGES.len()],
}

/// The badges of one render.
pub struct BadgeTable {
    /// Display names of providers (the status badge's label).
    site: Arc<SiteInfo>,
    /// The monitor loop has stalled: every status badge says `stale`.
    stale: bool,
    /// Sorted by id.
    rows: Vec<Row>,
    /// Each provider's first monitor (in the health view's order), as an index into `rows`,
    /// sorted by provider id. A provider whose id is also a monitor's id is left out: the
    /// monitor wins.
    providers: Vec<u32>,
}

impl BadgeTable {
    /// The table of `monitors` (with their `histories`, same order) rendered at `at`. A badge
    /// that says what it said in `previous` keeps its `Last-Modified` from there.
    pub fn build(
        site: Arc<SiteInfo>,
        stale: bool,
        monitors: &[MonitorHealth],
        histories: &[Arc<MonitorHistory>],
        at: Millis,
        previous: Option<&BadgeTable>,
    ) -> BadgeTable {
        let rows_in_health_order = monitors.iter().enumerate().map(|(n, m)| Row {
            id: m.id.as_str().into(),
            provider: m.provider.as_str().into(),
            state: m.state,
            uptime_30d: histories.get(n).and_then(|h| h.uptime.d30),
            since: [at; BADGES.len()],
        });
        let mut rows: Vec<(u32, Row)> = (0u32..).zip(rows_in_health_order).collect();
        rows.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        // Each provider's first monitor: sorted by provider, then by place in the health view,
        // the first of each provider's run is kept.
        let mut providers: Vec<(u32, u32)> = (0u32..).zip(rows.iter().map(|r| r.0)).collect();
        providers.sort_by(|a, b| {
            let (pa, pb) = (
                &rows[a.0 as usize].1.provider,
                &rows[b.0 as usize].1.provider,
            );
            pa.cmp(pb).then(a.1.cmp(&b.1))
        });
        providers.dedup_by(|later, first| {
            rows[later.0 as usize].1.provider == rows[first.0 as usize].1.provider
        });
        let rows: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
        let mut table = BadgeTable {
            site,
            stale,
            providers: providers
                .into_iter()
                .map(|(row, _)| row)
                .filter(|&n| {
                    let provider = &rows[n as usize].provider;
                    rows.binary_search_by(|r| r.id.as_ref().cmp(provider))
                        .is_err()
                })
                .collect(),
            rows,
        };
        if let Some(previous) = previous {
            table.keep_unchanged_since(previous);
        }
        table
    }

    /// Gives every badge that says what it said in `previous` its `since` from there.
    fn keep_unchanged_since(&mut self, previous: &BadgeTable) {
        let mut since = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let Some(before) = previous.monitor(&row.id) else {
                since.push(row.since);
                continue;
            };
            since.push(std::array::from_fn(|b| {
                let says = BADGES[b].1;
                if says(self, row) == says(previous, before) {
                    before.since[b]
                } else {
                    row.since[b]
                }
            }));
        }
        for (row, since) in self.rows.iter_mut().zip(since) {
            row.since = since;
        }
    }

    fn monitor(&self, id: &str) -> Option<&Row> {
        let n = self.rows.binary_search_by(|r| r.id.as_ref().cmp(id)).ok()?;
        Some(&self.rows[n])
    }

    /// The row of a monitor id, or of a provider id's first monitor.
    fn row(&self, key: &str) -> Option<&Row> {
        self.monitor(key).or_else(|| {
            let n = self
                .providers
                .binary_search_by(|&n| self.rows[n as usize].provider.as_ref().cmp(key))
                .ok()?;
            Some(&self.rows[self.providers[n] as usize])
        })
    }

    /// Badge `which` (an index into [`BADGES`]) of a monitor id or provider id, drawn now.
    pub fn draw(&self, key: &str, which: usize) -> Option<Arc<Rendered>> {
        let (_, says) = BADGES.get(which)?;
        let row = self.row(key)?;
        let body = says(self, row).draw();
        Some(Rendered::publish(
            None,
            rendered::SVG,
            body,
            row.since[which],
        ))
    }
}
