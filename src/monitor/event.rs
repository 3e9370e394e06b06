//! What the monitor announces: incidents opened and closed. Alerts, the queue and live pages
//! subscribe. Owns the event type only; must not decide when one is sent (the core does, once
//! the store has the change — see `journal`).

use crate::incident::IncidentKind;
use crate::time::Millis;

/// An incident change, sent after the store has it, so a subscriber can always read it back.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    IncidentOpened {
        id: i64,
        monitor: String,
        kind: IncidentKind,
        reopened: bool,
        at: Millis,
    },
    IncidentClosed {
        id: i64,
        monitor: String,
        kind: IncidentKind,
        at: Millis,
    },
}

impl MonitorEvent {
    /// The incident's store id.
    pub fn id(&self) -> i64 {
        match self {
            MonitorEvent::IncidentOpened { id, .. } | MonitorEvent::IncidentClosed { id, .. } => {
                *id
            }
        }
    }

    /// The same event about incident `new` (a provisional id replaced by the store's).
    pub fn set_id(&mut self, new: i64) {
        match self {
            MonitorEvent::IncidentOpened { id, .. } | MonitorEvent::IncidentClosed { id, .. } => {
                *id = new;
            }
        }
    }
}
