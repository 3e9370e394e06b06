//! Wall-clock time (Unix milliseconds) derived from tokio's clock.
//!
//! Incidents and results carry wall times, but every wait in the monitor uses tokio time. Taking
//! the wall time as "start + tokio time elapsed" keeps the two consistent and lets paused-time
//! tests move both at once.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::Millis;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Millis,
    start: tokio::time::Instant,
}

impl Clock {
    /// Starts at the system's current time.
    pub fn system() -> Clock {
        let base = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
        });
        Clock::starting_at(base)
    }

    /// Starts at a chosen wall time (tests).
    pub fn starting_at(base: Millis) -> Clock {
        Clock {
            base,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        self.at(tokio::time::Instant::now())
    }

    /// The wall time of a tokio instant.
    pub fn at(&self, instant: tokio::time::Instant) -> Millis {
        let elapsed = instant.saturating_duration_since(self.start).as_millis();
        self.base + Millis::try_from(elapsed).unwrap_or(Millis::MAX / 2)
    }

    /// The tokio instant of a wall time (now, for times already past).
    pub fn instant_of(&self, at: Millis) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let ahead = at.saturating_sub(self.at(now));
        now + std::time::Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
    }
}
