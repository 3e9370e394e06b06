//! Where the store lives: the one setting that selects the back end (`ISDOWN_DATABASE_URL` or
//! `[store] url`), parsed once into a [`DatabaseUrl`], and the pool settings of a server back end.
//!
//! A PostgreSQL URL may carry a password, so it is a secret from the moment it is read: its
//! password is registered with [`crate::secret`] (every log line, error and page is scrubbed of
//! it), the URL itself is kept in a [`SecretString`], and what is shown anywhere — errors,
//! `Debug`, the start-up banner — is the URL without its password
//! (`postgres://isdown@db.internal:5432/isdown`). Errors never repeat the value they reject.
//! Nothing here connects to anything; `store::open` does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use thiserror::Error;

/// The connection parameters a PostgreSQL URL may carry (the ones sqlx understands). Anything
/// else is refused rather than passed on: sqlx would log an unknown parameter with its value.
const POSTGRES_PARAMETERS: [&str; 12] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
];

/// The selected store.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    /// `sqlite:PATH`: a file, created on first use.
    Sqlite(PathBuf),
    /// `postgres://…` (or `postgresql://…`).
    Postgres(PostgresUrl),
}

/// A PostgreSQL URL: the whole URL as a secret, and a form without the password to show.
#[derive(Clone)]
pub struct PostgresUrl {
    url: SecretString,
    shown: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatabaseUrlError {
    #[error("is empty; expected sqlite:PATH or postgres://USER@HOST/DATABASE")]
    Empty,
    #[error("has an unknown scheme; expected sqlite:PATH or postgres://USER@HOST/DATABASE")]
    UnknownScheme,
    #[error("names no file after `sqlite:`; expected e.g. sqlite:/var/lib/isdown/isdown.db")]
    NoSqlitePath,
    /// The reason comes from the URL parser and never quotes the input.
    #[error(
        "is not a valid PostgreSQL URL ({0}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    NotAUrl(String),
    #[error("has a part that is not UTF-8 once percent-decoded ({0})")]
    NotUtf8(&'static str),
    #[error(
        "has an unknown connection parameter `{0}`; known: {known}",
        known = POSTGRES_PARAMETERS.join(", ")
    )]
    UnknownParameter(String),
    #[error("has a connection parameter sqlx refuses: {0}")]
    Refused(String),
}

impl DatabaseUrl {
    /// Parses a setting's value. A PostgreSQL password (in the URL's user info or a `password`
    /// parameter) is registered as a secret before anything else can see it.
    pub fn parse(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        let scheme = text.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => {
                // `sqlite:PATH`, and sqlx's `sqlite://PATH` spelling of the same.
                let rest = &text["sqlite:".len()..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(DatabaseUrlError::NoSqlitePath);
                }
                Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
            }
            Some("postgres" | "postgresql") => PostgresUrl::parse(text).map(DatabaseUrl::Postgres),
            _ => Err(DatabaseUrlError::UnknownScheme),
        }
    }

    /// The SQLite file under a data directory: the store when nothing selects another.
    pub fn default_in(data: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite(data.join(crate::store::DB_FILE))
    }
}

impl fmt::Display for DatabaseUrl {
    /// What to show: the file, or the PostgreSQL URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => url.fmt(f),
        }
    }
}

impl PostgresUrl {
    fn parse(text: &str) -> Result<PostgresUrl, DatabaseUrlError> {
        // The parser's messages name what is wrong ("invalid port number"), never the input.
        let url =
            reqwest::Url::parse(text).map_err(|e| DatabaseUrlError::NotAUrl(e.to_string()))?;
        let mut secrets = Vec::new();
        if let Some(password) = url.password() {
            secrets.push(password.to_owned());
            secrets.push(decoded(password, "the password")?);
        }
        for (key, value) in url.query_pairs() {
            if !POSTGRES_PARAMETERS.contains(&key.as_ref()) {
                return Err(DatabaseUrlError::UnknownParameter(key.into_owned()));
            }
            if key == "password" {
                secrets.push(value.into_owned());
            }
        }
        crate::secret::register(secrets.iter().map(String::as_str));
        if !url.username().is_empty() {
            decoded(url.username(), "the user name")?;
        }
        let options = PgConnectOptions::from_url(&url)
            .map_err(|e| DatabaseUrlError::Refused(crate::secret::scrub(&e.to_string())))?;
        Ok(PostgresUrl {
            url: SecretString::from(text.to_owned()),
            shown: shown(&options),
        })
    }

    /// The options to connect with (password included).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.url
            .expose_secret()
            .parse()
            .expect("the URL was parsed into these same options when it was read")
    }

    /// The whole URL, password included: only for handing to a child process's environment or
    /// a connection, never for showing.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// This URL with another database name (the rest, password included, unchanged): for
    /// creating and reaching scratch databases on the same server.
    pub fn with_database(&self, database: &str) -> PostgresUrl {
        let mut url = reqwest::Url::parse(self.url.expose_secret())
            .expect("the URL was parsed when it was read");
        url.set_path(&format!("/{database}"));
        // A `dbname` parameter would win over the path.
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "dbname")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let options = PgConnectOptions::from_url(&url)
            .expect("only the database name changed in a URL that was accepted");
        PostgresUrl {
            shown: shown(&options),
            url: SecretString::from(url.to_string()),
        }
    }

    /// The database name, as the server will be asked for it.
    pub fn database(&self) -> String {
        let options = self.connect_options();
        options
            .get_database()
            .unwrap_or(options.get_username())
            .to_owned()
    }
}

/// `postgres://USER@HOST:PORT/DATABASE` (or `…@/path/to/socket…` for a Unix socket): enough to
/// tell which server and database is meant, without the password.
fn shown(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => options.get_host().to_owned(),
    };
    let database = options
        .get_database()
        .unwrap_or(options.get_username())
        .to_owned();
    format!(
        "postgres://{}@{host}:{}/{database}",
        options.get_username(),
        options.get_port()
    )
}

fn decoded(part: &str, what: &'static str) -> Result<String, DatabaseUrlError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| DatabaseUrlError::NotUtf8(what))
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

/// How the PostgreSQL store's connection pool behaves (`[store]`). SQLite keeps its own fixed
/// pool (one writer, four readers), which these do not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections one isdown process opens at most.
    pub size: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    /// 10 connections: the monitor's writes, the alert dispatcher, the status page's renderer,
    /// the API's reads (two at a time) and the hourly prune each hold one at most, with room to
    /// spare; ten instances of isdown then fit in PostgreSQL's default `max_connections` (100).
    /// 30 s to acquire: far longer than any query waits on a healthy database, short enough
    /// that a lost database surfaces as an error (and the monitor's restart) rather than a hang.
    fn default() -> Self {
        PoolSettings {
            size: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_file() {
        for (text, path) in [
            ("sqlite:isdown.db", "isdown.db"),
            (
                "sqlite:/var/lib/isdown/isdown.db",
                "/var/lib/isdown/isdown.db",
            ),
            ("sqlite:///var/lib/isdown.db", "/var/lib/isdown.db"),
            ("  SQLite:data/x.db ", "data/x.db"),
        ] {
            match DatabaseUrl::parse(text) {
                Ok(DatabaseUrl::Sqlite(p)) => assert_eq!(p, PathBuf::from(path), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            DatabaseUrl::parse("sqlite:").unwrap_err(),
            DatabaseUrlError::NoSqlitePath
        );
    }

    #[test]
    fn postgres_urls_show_everything_but_the_password() {
        let url = DatabaseUrl::parse("postgres://isdown:pg-pass-Xy7@db.internal:6543/monitoring")
            .unwrap();
        let shown = url.to_string();
        assert_eq!(shown, "postgres://isdown@db.internal:6543/monitoring");
        assert!(!format!("{url:?}").contains("pg-pass-Xy7"));
        // Registered: any text that quotes it is scrubbed.
        assert_eq!(
            crate::secret::scrub("auth with pg-pass-Xy7 failed"),
            "auth with [redacted] failed"
        );
        let DatabaseUrl::Postgres(pg) = url else {
            panic!("postgres")
        };
        assert_eq!(pg.database(), "monitoring");
        let scratch = pg.with_database("isdown_test_1");
        assert_eq!(
            scratch.to_string(),
            "postgres://isdown@db.internal:6543/isdown_test_1"
        );
        assert_eq!(
            scratch.connect_options().get_database(),
            Some("isdown_test_1")
        );
    }

    #[test]
    fn a_percent_encoded_password_is_registered_decoded_too() {
        let url = DatabaseUrl::parse("postgresql://u:p%40ss-w0rd-enc@localhost/db").unwrap();
        assert_eq!(url.to_string(), "postgres://u@localhost:5432/db");
        assert_eq!(
            crate::secret::scrub("p@ss-w0rd-enc and p%40ss-w0rd-enc"),
            "[redacted] and [redacted]"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for (text, expected) in [
            ("", DatabaseUrlError::Empty),
            (
                "mysql://root:hunter22@db/x",
                DatabaseUrlError::UnknownScheme,
            ),
            ("/var/lib/isdown.db", DatabaseUrlError::UnknownScheme),
            (
                "postgres://u:hunter22@db/x?passwd=hunter22",
                DatabaseUrlError::UnknownParameter("passwd".into()),
            ),
        ] {
            assert_eq!(DatabaseUrl::parse(text).unwrap_err(), expected, "{text}");
        }
        let error = DatabaseUrl::parse("postgres://u:hunter22@db:99999/x").unwrap_err();
        assert!(matches!(error, DatabaseUrlError::NotAUrl(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter22"), "{error}");
        let error = DatabaseUrl::parse("postgres://u:hunter22@db/x?sslmode=sometimes").unwrap_err();
        assert!(matches!(error, DatabaseUrlError::Refused(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter22"), "{error}");
    }
}
