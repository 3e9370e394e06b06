//! Console: the line's content and the log level per event.

use std::io;
use std::sync::{Arc, Mutex};

use super::{Config, ConsoleChannel, line};
use crate::alert::AlertEvent;
use crate::alert::channel::Deliver;
use crate::alert::channel::support::{env, opened, resolved};

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn channel() -> ConsoleChannel {
    ConsoleChannel::new("demo", Config::default().resolve(&env(&[])).unwrap())
}

#[test]
fn the_line_says_what_is_down_since_when_why_whose_side_and_what_to_do() {
    let mut message = opened();
    message.items[0].explanation = "HTTP 503:\nupstream\r\nconnect error".to_owned();
    let line = line(&message);
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    for part in [
        "🔴 [Opened] Kimi is DOWN (unavailable) since 14:03 UTC",
        "(Since 2026-11-25 14:03 UTC)",
        "What to do: Fail over to DeepSeek",
        "Kimi · kimi-large (monitor kimi-chat): unavailable, the provider's side, \
         since 2026-11-25 14:03 UTC: HTTP 503: upstream connect error",
        "Moonshot · moonshot-large (monitor moonshot-chat): timeout",
        "| https://status.example.com/incidents/42",
        "| dedup key isdown-outage-kimi-1795615387",
    ] {
        assert!(line.contains(part), "missing {part:?} in {line}");
    }
    let line = super::line(&resolved());
    assert!(
        line.contains("back up after 1 h 2 min")
            && line.contains("14:03 UTC → 2026-11-25 15:05 UTC"),
        "{line}"
    );
}

#[test]
fn opened_and_reminders_warn_resolves_and_tests_inform() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let channel = channel();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            for event in [
                AlertEvent::Opened,
                AlertEvent::Reminder,
                AlertEvent::Resolved,
                AlertEvent::Test,
            ] {
                let message = crate::alert::AlertMessage { event, ..opened() };
                channel.send(&message).await.unwrap();
            }
        });
    });
    let output = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let levels: Vec<&str> = output
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(levels, ["WARN", "WARN", "INFO", "INFO"], "{output}");
    assert!(
        output.contains("channel=\"demo\"") || output.contains("channel=demo"),
        "{output}"
    );
    assert!(output.contains("[Reminder] Kimi is DOWN"), "{output}");
}

#[test]
fn the_table_takes_no_settings() {
    let _: Config = toml::from_str("").unwrap();
    let err = toml::from_str::<Config>("level = \"warn\"").unwrap_err();
    assert!(err.to_string().contains("level"), "{err}");
}
