//! SQLite implementation of [`super::Store`] (STUB until the real one lands).
use std::path::Path;

pub struct SqliteStore;

impl SqliteStore {
    pub async fn open(_path: &Path) -> Result<SqliteStore, super::StoreError> {
        unimplemented!("being written")
    }
}
