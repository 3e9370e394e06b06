//! Alert policy: the settings that decide which incident goes to which channel and when —
//! reminders, the grouping window, retry pacing, maintenance windows, and per-channel routes.
//!
//! Values are validated when they are built (from `[alerting]` and the routing keys of each
//! `[alerts.NAME]` table), so the rules and the outbox never see an invalid one. Nothing here
//! does I/O.

use std::time::Duration;

use crate::incident::IncidentKind;
use crate::time::Millis;

/// 30 min: often enough that an open outage is not forgotten, rarely enough not to be noise.
pub const DEFAULT_REMINDER: Duration = Duration::from_secs(30 * 60);
/// 5 min: reminders more often than this are an alert storm by another name.
pub const MIN_REMINDER: Duration = Duration::from_secs(5 * 60);
/// 20 s: the longest a message waits for other failing monitors to be confirmed (their
/// confirmation probes are already scheduled, so the wait is normally about `confirm_after`), and
/// the shortest gap between two follow-ups of one group. A lone incident never waits.
pub const DEFAULT_GROUP_WINDOW: Duration = Duration::from_secs(20);
/// 5 s, doubling to 10 min: a receiver blip is bridged within seconds, a long receiver outage
/// costs six attempts an hour.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10 * 60);
/// 24 h: past a day an outage alert is history, not news; it is given up and reported.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A set of monitors named by monitor id ("kimi-chat"), provider id ("kimi") or a glob with
/// `*` ("kimi-*", "*").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSet(Vec<String>);

impl MonitorSet {
    pub fn all() -> MonitorSet {
        MonitorSet(vec!["*".to_owned()])
    }

    pub fn new(patterns: Vec<String>) -> Result<MonitorSet, String> {
        if patterns.is_empty() {
            return Err("needs at least one monitor, provider or glob (\"*\" for all)".into());
        }
        if let Some(bad) = patterns.iter().find(|p| p.trim().is_empty()) {
            return Err(format!("empty pattern {bad:?}"));
        }
        Ok(MonitorSet(patterns))
    }

    /// Whether the monitor `id` of `provider` is in the set.
    pub fn contains(&self, id: &str, provider: &str) -> bool {
        self.0
            .iter()
            .any(|p| p == provider || glob_match(p.as_bytes(), id.as_bytes()))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_match(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

/// A window during which chosen monitors raise no alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub monitors: MonitorSet,
    pub start: Millis,
    pub end: Millis,
    pub reason: Option<String>,
}

impl Maintenance {
    pub fn covers(&self, monitor: &str, provider: &str, at: Millis) -> bool {
        (self.start..self.end).contains(&at) && self.monitors.contains(monitor, provider)
    }
}

/// Which incidents one channel receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRoute {
    pub channel: String,
    /// Incident kinds (`on = [...]`); all by default, `regional` included: a provider that
    /// fails from one region is down for the agents that run there.
    pub kinds: Vec<IncidentKind>,
    /// Monitors (`monitors = [...]`); all by default. A `network` incident concerns every
    /// monitor, so it reaches every channel that takes the `network` kind.
    pub monitors: MonitorSet,
}

impl ChannelRoute {
    /// The route of channel `channel` from its routing keys (`on`, `monitors`), each absent
    /// meaning "all". Errors name the key.
    pub fn new(
        channel: &str,
        on: Option<Vec<String>>,
        monitors: Option<Vec<String>>,
    ) -> Result<ChannelRoute, (&'static str, String)> {
        let kinds = match on {
            None => IncidentKind::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|k| {
                    IncidentKind::parse(k).ok_or_else(|| {
                        let known: Vec<String> = IncidentKind::ALL
                            .iter()
                            .map(|k| format!("{:?}", k.as_str()))
                            .collect();
                        (
                            "on",
                            format!("unknown incident kind {k:?}; one of {}", known.join(", ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if kinds.is_empty() {
            return Err((
                "on",
                "an empty list would silence the channel; remove the channel instead".into(),
            ));
        }
        let monitors = match monitors {
            None => MonitorSet::all(),
            Some(patterns) => MonitorSet::new(patterns).map_err(|m| ("monitors", m))?,
        };
        Ok(ChannelRoute {
            channel: channel.to_owned(),
            kinds,
            monitors,
        })
    }

    /// Whether this channel takes an incident of `kind` on `monitor`.
    pub fn takes(&self, kind: IncidentKind, monitor: &str, provider: &str) -> bool {
        self.kinds.contains(&kind)
            && (kind == IncidentKind::Network || self.monitors.contains(monitor, provider))
    }
}

/// `[alerting]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    /// `None`: no reminders.
    pub reminder: Option<Duration>,
    pub group_window: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    pub maintenance: Vec<Maintenance>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            reminder: Some(DEFAULT_REMINDER),
            group_window: DEFAULT_GROUP_WINDOW,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            maintenance: Vec::new(),
        }
    }
}

impl AlertPolicy {
    /// Parses the `reminder` value: a duration of at least [`MIN_REMINDER`], or "off".
    pub fn parse_reminder(text: &str) -> Result<Option<Duration>, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let duration = humantime::parse_duration(text.trim()).map_err(|e| {
            format!("invalid duration \"{text}\" ({e}); expected e.g. \"30m\" or \"off\"")
        })?;
        if duration < MIN_REMINDER {
            return Err(format!(
                "reminders more often than every {} are not allowed (use \"off\" to disable)",
                humantime::format_duration(MIN_REMINDER)
            ));
        }
        Ok(Some(duration))
    }

    /// Parses an RFC 3339 instant into Unix milliseconds.
    pub fn parse_instant(text: &str) -> Result<Millis, String> {
        let t = humantime::parse_rfc3339_weak(text.trim()).map_err(|e| {
            format!(
                "invalid time \"{text}\" ({e}); expected RFC 3339, e.g. \"2026-12-01T02:00:00Z\""
            )
        })?;
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| format!("time \"{text}\" is before 1970"))?
            .as_millis();
        Millis::try_from(ms).map_err(|_| format!("time \"{text}\" is out of range"))
    }

    /// The maintenance window silencing `monitor` at `at`, if any.
    pub fn silenced(&self, monitor: &str, provider: &str, at: Millis) -> Option<&Maintenance> {
        self.maintenance
            .iter()
            .find(|m| m.covers(monitor, provider, at))
    }

    /// The next maintenance boundary after `at` (when silencing may start or stop).
    pub fn next_boundary(&self, at: Millis) -> Option<Millis> {
        self.maintenance
            .iter()
            .flat_map(|m| [m.start, m.end])
            .filter(|b| *b > at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_monitor_ids_and_bare_names_match_providers() {
        let set = MonitorSet::new(vec!["kimi".into(), "deep*-chat".into()]).unwrap();
        assert!(set.contains("kimi-chat", "kimi"));
        assert!(set.contains("kimi-stream", "kimi"));
        assert!(set.contains("deepseek-chat", "deepseek"));
        assert!(!set.contains("deepseek-stream", "deepseek"));
        assert!(!set.contains("kimi-cn-chat", "kimi-cn"));
        assert!(MonitorSet::all().contains("anything", "x"));
        assert!(MonitorSet::new(vec![]).is_err());
    }

    #[test]
    fn a_route_takes_only_its_kinds_and_monitors() {
        let strings = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        let route =
            ChannelRoute::new("mail", strings(&["setup_problem"]), strings(&["deepseek"])).unwrap();
        assert_eq!(route.kinds, vec![IncidentKind::SetupProblem]);
        assert!(route.takes(IncidentKind::SetupProblem, "deepseek-chat", "deepseek"));
        assert!(!route.takes(IncidentKind::Outage, "deepseek-chat", "deepseek"));
        assert!(!route.takes(IncidentKind::SetupProblem, "kimi-chat", "kimi"));
    }

    #[test]
    fn a_channel_without_routing_keys_takes_everything_and_network_ignores_monitors() {
        let all = ChannelRoute::new("log", None, None).unwrap();
        assert!(all.takes(IncidentKind::Outage, "kimi-chat", "kimi"));
        assert!(all.takes(IncidentKind::SetupProblem, "kimi-chat", "kimi"));
        let strings = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        let kimi = ChannelRoute::new("pager", strings(&["network", "outage"]), strings(&["kimi"]))
            .unwrap();
        assert!(kimi.takes(IncidentKind::Network, "*", "*"));
        assert!(!kimi.takes(IncidentKind::Outage, "glm-chat", "glm"));
    }

    #[test]
    fn bad_routing_values_name_the_key() {
        let strings = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        for (on, monitors, key) in [
            (strings(&["outages"]), None, "on"),
            (strings(&[]), None, "on"),
            (None, strings(&[]), "monitors"),
            (None, strings(&[" "]), "monitors"),
        ] {
            let (field, _) = ChannelRoute::new("x", on, monitors).unwrap_err();
            assert_eq!(field, key);
        }
    }

    #[test]
    fn reminders_are_at_least_five_minutes_or_off() {
        assert_eq!(
            AlertPolicy::parse_reminder("45m").unwrap(),
            Some(Duration::from_secs(2_700))
        );
        assert_eq!(AlertPolicy::parse_reminder("off").unwrap(), None);
        assert!(
            AlertPolicy::parse_reminder("1m")
                .unwrap_err()
                .contains("5m")
        );
        assert!(AlertPolicy::parse_reminder("soon").is_err());
    }

    #[test]
    fn maintenance_silences_its_monitors_inside_its_window_only() {
        let policy = AlertPolicy {
            maintenance: vec![Maintenance {
                monitors: MonitorSet::new(vec!["kimi".into()]).unwrap(),
                start: AlertPolicy::parse_instant("2026-12-01T02:00:00Z").unwrap(),
                end: AlertPolicy::parse_instant("2026-12-01T04:00:00Z").unwrap(),
                reason: Some("Moonshot maintenance".into()),
            }],
            ..AlertPolicy::default()
        };
        let at = |t: &str| AlertPolicy::parse_instant(t).unwrap();
        assert!(
            policy
                .silenced("kimi-chat", "kimi", at("2026-12-01T03:00:00Z"))
                .is_some()
        );
        assert!(
            policy
                .silenced("kimi-chat", "kimi", at("2026-12-01T04:00:00Z"))
                .is_none()
        );
        assert!(
            policy
                .silenced("glm-chat", "glm", at("2026-12-01T03:00:00Z"))
                .is_none()
        );
        assert_eq!(
            policy.next_boundary(at("2026-12-01T03:00:00Z")),
            Some(at("2026-12-01T04:00:00Z"))
        );
        assert!(AlertPolicy::parse_instant("tomorrow").is_err());
    }
}
