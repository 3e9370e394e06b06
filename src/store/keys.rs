//! Monitor id → `monitors.key`, cached in memory by either back end.
//!
//! Keys are never deleted or reassigned (in SQLite or in PostgreSQL), so a cached key cannot go
//! stale — not even when other processes share the database and add monitors of their own.
//! Entries are added only once the transaction that created them has committed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
pub struct MonitorKeys(Mutex<HashMap<String, i64>>);

impl MonitorKeys {
    pub fn new(known: impl IntoIterator<Item = (String, i64)>) -> MonitorKeys {
        MonitorKeys(Mutex::new(known.into_iter().collect()))
    }

    pub fn get(&self, monitor: &str) -> Option<i64> {
        // A panic elsewhere while holding the lock cannot leave a wrong entry (inserts are
        // whole), so a poisoned cache is still a good cache.
        let keys = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(monitor).copied()
    }

    pub fn remember<'a>(&self, new: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut keys = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, key) in new {
            keys.insert(id.to_owned(), key);
        }
    }
}
