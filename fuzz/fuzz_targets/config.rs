//! Config loading (`isdown::config::Config::from_toml`) on arbitrary text, with an environment
//! whose key variables hold values of every shape a user might paste.
//!
//! Input: the text of an `isdown.toml` (input that is not UTF-8 is uninteresting: the file is
//! read as a string before parsing). The environment answers every variable name from a fixed
//! table chosen by the name's bytes — unset, empty, blank, a control character, too short,
//! non-ASCII, and well-formed keys — so every key-resolving path runs. A fixed table and not
//! fuzzed values: loading registers every key in the process-wide secret registry, which is
//! never emptied by design, so fuzzed values would grow it without bound across runs.
//!
//! Checks: no panic, and an error never repeats a configured key (the valid keys of the table
//! are registered before the first run, as a previous load would have).
#![no_main]

use std::sync::Once;

use isdown::config::Config;
use libfuzzer_sys::fuzz_target;

/// Keys a config may resolve; the last two are valid and get registered as secrets.
const VALUES: [Option<&str>; 8] = [
    None,
    Some(""),
    Some("   "),
    Some("sk-fuzz\u{1}key-0123456789"),
    Some("abc"),
    Some("ключ-fuzz-κλειδί-0123"),
    Some("fuzzProviderKeyValue42"),
    Some("  sk-fuzz-ABCDEFabcdef0123456789  "),
];

/// The valid keys above, as they are registered (trimmed).
const SECRETS: [&str; 3] = [
    "ключ-fuzz-κλειδί-0123",
    "fuzzProviderKeyValue42",
    "sk-fuzz-ABCDEFabcdef0123456789",
];

fn env(name: &str) -> Option<String> {
    let pick = name.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    VALUES[pick % VALUES.len()].map(str::to_owned)
}

fuzz_target!(|input: &[u8]| {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| isdown::secret::register(SECRETS));
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match Config::from_toml(text, "isdown.toml", &env) {
        Ok(config) => {
            let _ = config.secrets();
        }
        Err(error) => {
            let message = error.to_string();
            for secret in SECRETS {
                assert!(
                    !message.contains(secret),
                    "a key in a config error: {message}"
                );
            }
        }
    }
});
