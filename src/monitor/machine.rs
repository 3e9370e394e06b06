//! The per-monitor state machine: results in, state changes and incident effects out.
//!
//! Pure and synchronous: it does no I/O and reads no clock (times come with the observations),
//! so every rule below is tested directly. The monitor core applies its [`Effect`]s (store,
//! alerts, confirmation probes) and persists its snapshot, so a restart continues where it was.
//!
//! Rules (README "Incidents" repeats them for users):
//! - Provider-blamed failures open an `outage` after `failure` consecutive ones (default 2);
//!   account/request-blamed ones open a `setup_problem` the same way. A 429 or a bad key is
//!   never an outage.
//! - Flapping: when at least `flap_failures` of the last `flap_window` results (default 5 of 10)
//!   failed on the provider's side, an outage opens even without consecutive failures.
//! - An incident closes after `success` consecutive healthy results (default 2). A flapping
//!   monitor never gets two in a row, so its incident stays open until it is stable.
//! - A failure within `reopen_within` (default 10 min) of a close reopens that same incident
//!   instead of starting a new one, so a shaky recovery is one incident, not three.
//! - After a first failure (or a first success during an incident) the core runs a confirmation
//!   probe after a short delay, so outages are confirmed — or dismissed — within seconds.
//! - Network-blamed results (isdown's own network) carry no information about the provider and
//!   leave the machine unchanged; the core raises one `network` incident for them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// The thresholds of the rules above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failure: u32,
    pub success: u32,
    pub flap_window: u32,
    pub flap_failures: u32,
    pub reopen_within: Millis,
    /// Delay of the confirmation probe, counted from the start of the probe that failed.
    pub confirm_after: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure: 2,
            success: 2,
            flap_window: 10,
            flap_failures: 5,
            reopen_within: 10 * 60_000,
            // 1 s: a second look a second later dismisses a blip (one failed request), and an
            // outage is confirmed — and alerted — within about a second of the probe that saw
            // it, so break → alert stays under one 30 s interval plus a second. Waiting longer
            // would only delay every real outage; live traffic confirms sooner still.
            confirm_after: Duration::from_secs(1),
        }
    }
}

/// What a monitor shows. Names are a contract (JSON API `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    /// Not probed yet.
    Unknown,
    Up,
    Degraded,
    Down,
    SetupProblem,
    /// Down from some regions but fewer than the quorum: no outage incident (several instances
    /// in several regions; never a machine's own state, see `monitor::regions`).
    Regional,
}

impl MonitorState {
    pub const ALL: [MonitorState; 6] = [
        MonitorState::Unknown,
        MonitorState::Up,
        MonitorState::Degraded,
        MonitorState::Down,
        MonitorState::SetupProblem,
        MonitorState::Regional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MonitorState::Unknown => "unknown",
            MonitorState::Up => "up",
            MonitorState::Degraded => "degraded",
            MonitorState::Down => "down",
            MonitorState::SetupProblem => "setup_problem",
            MonitorState::Regional => "regional",
        }
    }
}

/// One result as the machine sees it: blame already decided by correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub at: Millis,
    pub verdict: Verdict,
    pub blame: Option<Blame>,
    /// Redacted explanation, kept as the incident's error sample.
    pub sample: Option<String>,
}

/// What the core must do after an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open an incident (or, with `reopen`, reopen that recently closed one).
    Open {
        kind: IncidentKind,
        verdict: Verdict,
        failed_probes: u32,
        started_at: Millis,
        first_error: Option<String>,
        reopen: Option<i64>,
    },
    /// Another failure of the open incident.
    Note {
        incident: Option<i64>,
        verdict: Verdict,
        sample: Option<String>,
    },
    Close {
        incident: Option<i64>,
        kind: IncidentKind,
        ended_at: Millis,
    },
    /// Probe again after `Thresholds::confirm_after` instead of a full interval.
    Confirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Class {
    Healthy,
    Provider,
    Setup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenIncident {
    /// Filled by the core once the store has assigned it.
    id: Option<i64>,
    kind: IncidentKind,
    started_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClosedIncident {
    id: i64,
    kind: IncidentKind,
    ended_at: Millis,
}

/// The machine. Serializable: its snapshot is what the store keeps across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    state: MonitorState,
    since: Option<Millis>,
    last_verdict: Option<Verdict>,
    /// Class and length of the current run of equal classes.
    run_class: Option<Class>,
    run_length: u32,
    first_sample: Option<String>,
    run_started: Option<Millis>,
    /// Last `flap_window` results, newest in bit 0: 1 = provider-blamed failure.
    recent: u32,
    recent_len: u32,
    open: Option<OpenIncident>,
    last_closed: Option<ClosedIncident>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            state: MonitorState::Unknown,
            since: None,
            last_verdict: None,
            run_class: None,
            run_length: 0,
            first_sample: None,
            run_started: None,
            recent: 0,
            recent_len: 0,
            open: None,
            last_closed: None,
        }
    }

    pub fn state(&self) -> MonitorState {
        self.state
    }

    /// When the current state began.
    pub fn since(&self) -> Option<Millis> {
        self.since
    }

    pub fn last_verdict(&self) -> Option<Verdict> {
        self.last_verdict
    }

    /// The open incident's kind and store id (when assigned).
    pub fn open_incident(&self) -> Option<(IncidentKind, Option<i64>)> {
        self.open.as_ref().map(|o| (o.kind, o.id))
    }

    /// Records the store id of the incident an `Open` effect created.
    pub fn set_incident_id(&mut self, id: i64) {
        if let Some(open) = self.open.as_mut() {
            open.id = Some(id);
        }
    }

    /// The store's incident this machine belonged to was closed by someone else (the other
    /// regions recovered): the machine keeps its state and its own failure, without an id.
    pub fn forget_incident_id(&mut self) {
        if let Some(open) = self.open.as_mut() {
            open.id = None;
        }
    }

    /// Aligns the machine with the incidents the store has open, after a restart: a snapshot
    /// can lag the store by one write (incidents are written first), never lead it.
    pub fn reconcile(&mut self, open_in_store: Option<(IncidentKind, i64, Millis)>) {
        match open_in_store {
            Some((kind, id, started_at)) => {
                self.open = Some(OpenIncident {
                    id: Some(id),
                    kind,
                    started_at,
                });
                let state = if kind == IncidentKind::Outage {
                    MonitorState::Down
                } else {
                    MonitorState::SetupProblem
                };
                self.set_state(state, started_at);
            }
            None if self.open.is_some() => {
                // The store closed it; the close was the last thing that happened.
                self.open = None;
                self.set_state(MonitorState::Unknown, self.since.unwrap_or_default());
            }
            None => {}
        }
    }

    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).expect("the machine serializes")
    }

    pub fn restore(snapshot: &str) -> Result<Machine, serde_json::Error> {
        serde_json::from_str(snapshot)
    }

    /// Feeds one observation; returns what the core must do.
    pub fn observe(&mut self, obs: &Observation, t: &Thresholds) -> Vec<Effect> {
        let class = match (obs.verdict.is_healthy(), obs.blame) {
            (true, _) => Class::Healthy,
            (false, Some(Blame::Network)) => return Vec::new(),
            (false, Some(Blame::Provider) | None) => Class::Provider,
            (false, Some(Blame::Account | Blame::Request)) => Class::Setup,
        };
        self.last_verdict = Some(obs.verdict);
        self.push_recent(class == Class::Provider, t.flap_window);
        if self.run_class == Some(class) {
            self.run_length += 1;
        } else {
            self.run_class = Some(class);
            self.run_length = 1;
            self.run_started = Some(obs.at);
            self.first_sample = obs.sample.clone();
        }

        let mut effects = Vec::new();
        match class {
            Class::Healthy => self.on_healthy(obs, t, &mut effects),
            Class::Provider | Class::Setup => self.on_failure(class, obs, t, &mut effects),
        }
        effects
    }

    fn on_healthy(&mut self, obs: &Observation, t: &Thresholds, effects: &mut Vec<Effect>) {
        if let Some(open) = &self.open {
            if self.run_length >= t.success {
                effects.push(Effect::Close {
                    incident: open.id,
                    kind: open.kind,
                    ended_at: obs.at,
                });
                if let Some(id) = open.id {
                    self.last_closed = Some(ClosedIncident {
                        id,
                        kind: open.kind,
                        ended_at: obs.at,
                    });
                }
                self.open = None;
            } else {
                if self.run_length == 1 {
                    effects.push(Effect::Confirm);
                }
                return; // still down until the success threshold is met
            }
        }
        let state = if obs.verdict == Verdict::Degraded {
            MonitorState::Degraded
        } else {
            MonitorState::Up
        };
        self.set_state(state, obs.at);
    }

    fn on_failure(
        &mut self,
        class: Class,
        obs: &Observation,
        t: &Thresholds,
        effects: &mut Vec<Effect>,
    ) {
        let kind = if class == Class::Provider {
            IncidentKind::Outage
        } else {
            IncidentKind::SetupProblem
        };
        if let Some(open) = &self.open {
            if open.kind == kind {
                effects.push(Effect::Note {
                    incident: open.id,
                    verdict: obs.verdict,
                    sample: obs.sample.clone(),
                });
                return;
            }
            // A different kind of failure: the incident below is about something else now.
            if !self.threshold_met(class, t) {
                return;
            }
            effects.push(Effect::Close {
                incident: open.id,
                kind: open.kind,
                ended_at: obs.at,
            });
            self.open = None;
        }
        if !self.threshold_met(class, t) {
            if self.run_length == 1 {
                effects.push(Effect::Confirm);
            }
            return;
        }
        let reopen = self
            .last_closed
            .as_ref()
            .filter(|c| c.kind == kind && obs.at - c.ended_at <= t.reopen_within)
            .map(|c| c.id);
        let flapping = self.run_length < t.failure;
        let started_at = if flapping || reopen.is_some() {
            obs.at
        } else {
            self.run_started.unwrap_or(obs.at)
        };
        effects.push(Effect::Open {
            kind,
            verdict: obs.verdict,
            failed_probes: if flapping {
                self.recent.count_ones()
            } else {
                self.run_length
            },
            started_at,
            first_error: self.first_sample.clone().or_else(|| obs.sample.clone()),
            reopen,
        });
        self.open = Some(OpenIncident {
            id: reopen,
            kind,
            started_at,
        });
        if reopen.is_some() {
            self.last_closed = None;
        }
        let state = if kind == IncidentKind::Outage {
            MonitorState::Down
        } else {
            MonitorState::SetupProblem
        };
        self.set_state(state, started_at);
    }

    fn threshold_met(&self, class: Class, t: &Thresholds) -> bool {
        self.run_length >= t.failure
            || (class == Class::Provider && self.recent.count_ones() >= t.flap_failures)
    }

    fn push_recent(&mut self, provider_failure: bool, window: u32) {
        let window = window.clamp(1, 32);
        let mask = if window == 32 {
            u32::MAX
        } else {
            (1 << window) - 1
        };
        self.recent = ((self.recent << 1) | u32::from(provider_failure)) & mask;
        self.recent_len = (self.recent_len + 1).min(window);
    }

    fn set_state(&mut self, state: MonitorState, at: Millis) {
        if self.state != state {
            self.state = state;
            self.since = Some(at);
        }
    }
}

#[cfg(test)]
mod tests;
