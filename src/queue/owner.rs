//! Who owns a file or a batch: an id derived from the client key a request presents, so that a
//! key sees only its own work — and the key itself never reaches the database.
//!
//! The id is HMAC-SHA256 of the key under a random secret kept once per database
//! (`QueueStore::queue_secret`): the same key gives unrelated ids in two databases, and a copy of
//! the ids alone says nothing about the keys. Someone holding the whole database can test guesses
//! of a key against it, as with any stored hash; gateway keys should be long and random. With
//! an open gateway (no keys, localhost only) every local program is the one owner `local`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The owner of everything created through an open gateway.
pub const LOCAL: &str = "local";

/// Bytes of the secret created for a new database.
pub const SECRET_BYTES: usize = 32;

/// Derives owner ids; cheap to clone.
#[derive(Clone)]
pub struct Owners {
    secret: std::sync::Arc<[u8]>,
    open: bool,
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Owners {
    pub fn new(secret: &[u8], open: bool) -> Owners {
        Owners {
            secret: secret.into(),
            open,
        }
    }

    /// The owner of requests presenting `key` (already checked by the gateway's auth).
    pub fn of(&self, key: Option<&str>) -> String {
        match key {
            Some(key) if !self.open => {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
                    .expect("HMAC takes a key of any length");
                mac.update(key.as_bytes());
                let digest = mac.finalize().into_bytes();
                // 128 bits: no two keys collide in practice, and the id stays short.
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("key_{hex}")
            }
            _ => LOCAL.to_owned(),
        }
    }
}

/// A fresh secret from the operating system's random source.
pub fn fresh_secret() -> Result<[u8; SECRET_BYTES], getrandom::Error> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_id_is_stable_per_key_and_secret_and_never_the_key() {
        let owners = Owners::new(b"secret-one", false);
        let a = owners.of(Some("gw-key-alpha-123"));
        assert_eq!(a, owners.of(Some("gw-key-alpha-123")));
        assert_ne!(a, owners.of(Some("gw-key-beta-456")));
        assert!(!a.contains("alpha"), "{a}");
        assert_eq!(a.len(), "key_".len() + 32);
        let elsewhere = Owners::new(b"secret-two", false);
        assert_ne!(
            a,
            elsewhere.of(Some("gw-key-alpha-123")),
            "keyed by the database's secret"
        );
        let open = Owners::new(b"secret-one", true);
        assert_eq!(open.of(Some("anything")), LOCAL);
        assert_eq!(open.of(None), LOCAL);
    }

    #[test]
    fn fresh_secrets_differ() {
        assert_ne!(fresh_secret().unwrap(), fresh_secret().unwrap());
    }
}
