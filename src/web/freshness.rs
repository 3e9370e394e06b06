//! How fresh the public views are: when the monitor last changed the data they show, and
//! whether its loop has stopped ticking — then the data is stale, whatever colour it shows.
//!
//! Pure: computed from the health view and a time. The liveness rule itself (heartbeat, how long
//! a silence means a stall) belongs to the monitor's health view; this only words it for pages
//! and JSON.

use crate::monitor::health::{HealthSnapshot, Liveness};
use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The newest probe result the views include: when the monitor last updated the data.
    /// `None` before the first result.
    pub updated_at: Option<Millis>,
    /// The monitor loop has stalled: states and bars may be out of date.
    pub stale: bool,
}

impl Freshness {
    pub fn of(health: &HealthSnapshot, now: Millis) -> Freshness {
        Freshness {
            updated_at: health.monitors.iter().filter_map(|m| m.last_at).max(),
            stale: matches!(health.liveness(now), Liveness::Stalled { .. }),
        }
    }
}
