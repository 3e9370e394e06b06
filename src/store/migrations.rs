//! The schema's migrations, one numbered list for both dialects, embedded in the binary.
//!
//! The SQL lives at the crate root, in `migrations/sqlite/` and `migrations/postgres/` (schema
//! data, not source): one file per version in each directory, with the same number and name, so
//! a schema change is one new file in each. [`list!`] names every version once and takes both
//! directories' files from that one line, so the two dialects cannot drift apart in numbering.
//!
//! Released files are never edited: sqlx records a checksum of each migration it applied and
//! refuses to open a database whose embedded text differs (`StoreError::Migrate`). That includes
//! their comments, which name paths as they were when the file was released. No I/O here; the
//! back ends run the migrator on open.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// A dialect's migrations, in order: (version, description, SQL).
type Migrations = [(i64, &'static str, &'static str); 8];

/// The migrations of the dialect whose directory under `migrations/` is `$dir`.
macro_rules! list {
    ($dir:literal) => {
        [
            (1, "init", list!(@file $dir, "0001_init.sql")),
            (2, "alerts", list!(@file $dir, "0002_alerts.sql")),
            (3, "history scrub", list!(@file $dir, "0003_history_scrub.sql")),
            (4, "state quarantine", list!(@file $dir, "0004_state_quarantine.sql")),
            (5, "official", list!(@file $dir, "0005_official.sql")),
            (6, "queue", list!(@file $dir, "0006_queue.sql")),
            (7, "peers", list!(@file $dir, "0007_peers.sql")),
            (8, "origin", list!(@file $dir, "0008_origin.sql")),
        ]
    };
    (@file $dir:literal, $file:literal) => {
        include_str!(concat!("../../migrations/", $dir, "/", $file))
    };
}

pub(super) const SQLITE: Migrations = list!("sqlite");
pub(super) const POSTGRES: Migrations = list!("postgres");

/// A migrator for `migrations`, or for their first `upto` ones (a database of an older release).
pub(super) fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files each directory holds, sorted.
    fn files(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_file_is_listed_and_numbered_alike_in_both_directories() {
        let expected: Vec<String> = SQLITE
            .iter()
            .map(|(version, description, _)| {
                format!("{version:04}_{}.sql", description.replace(' ', "_"))
            })
            .collect();
        assert_eq!(files("sqlite"), expected, "a file not in `list!`");
        assert_eq!(files("postgres"), expected, "a file not in `list!`");
    }

    /// The checksums sqlx recorded in databases created by earlier releases (read back from a
    /// SQLite file and a PostgreSQL database that main's binary created before the files moved
    /// to `migrations/`): a changed byte in a released file — a moved comment, a line ending —
    /// would refuse every existing database.
    #[test]
    fn released_migrations_keep_their_checksums() {
        let first_bytes = |migrations: &Migrations| -> Vec<String> {
            migrator(migrations)
                .iter()
                .map(|m| {
                    m.checksum
                        .iter()
                        .take(8)
                        .map(|b| format!("{b:02x}"))
                        .collect()
                })
                .collect()
        };
        let (sqlite, postgres): (Vec<String>, Vec<String>) = RELEASED
            .iter()
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .unzip();
        assert_eq!(first_bytes(&SQLITE), sqlite);
        assert_eq!(first_bytes(&POSTGRES), postgres);
    }

    /// Per version: the first 8 bytes of the SHA-384 in `_sqlx_migrations.checksum`, in a SQLite
    /// file and in a PostgreSQL database.
    const RELEASED: [(&str, &str); 8] = [
        ("5772c42ede405f1b", "b010de84bb5ca0a6"),
        ("bdf91058b601568f", "e7f391cb6970af72"),
        ("cace58989796039d", "4e4892acbe2d8921"),
        ("bd86e79c5bdffea6", "92d7198517963e32"),
        ("5b8f75f11761bad1", "7104c19f3a733346"),
        ("77d25cf087d822a5", "b2c6f43beb3c5566"),
        ("9d35392d1525ea76", "06c3979b4fd5204c"),
        ("21bbe62b57636539", "21bbe62b57636539"),
    ];
}
