//! Circuit breakers, one per endpoint (on this node): after a run of failures the endpoint
//! gets no attempts for a cool-down, then one probe; a successful probe closes the circuit,
//! a failed one opens it again for twice as long (up to a maximum).
//!
//! While a circuit is open, deliveries are not attempted and not counted as attempts: they
//! go back to the queue, due when the circuit may close, so a dead endpoint does not burn
//! through its messages' retry schedules, and the claimer leaves its rows alone.
//!
//! Nodes sharing a database share their circuits through it (`Queue::share_circuit`): a
//! circuit one node opens is adopted by the others when they next read the open ones, and
//! the probe is taken by one node for all (`Queue::take_probe`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::metrics::Gauge;

/// Past this many remembered endpoints, closed circuits are forgotten.
const MEMORY: usize = 10_000;

/// When circuits open and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit; 0 turns circuit breaking off.
    pub failures: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

/// What an attempt may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed: go.
    Go,
    /// The cool-down is over: this attempt is the probe.
    Probe,
    /// Not now: give the delivery back, due at this time.
    GiveBack(DateTime<Utc>),
}

/// What adopting a circuit another node opened changed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// Nothing: the time is past, this node's circuit is open for as long or probing, or
    /// circuit breaking is off.
    Nothing,
    /// The circuit was closed here and is open now.
    Opened,
    /// It was open here already, and now stays open longer (another node took the probe
    /// or opened it again).
    HeldLonger,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until: DateTime<Utc>,
        cooldown: chrono::Duration,
    },
    Probing {
        cooldown: chrono::Duration,
    },
}

#[derive(Debug)]
struct Circuit {
    failures: u32,
    state: State,
    /// Opened on another node's word (`adopt`), not by failures seen here: it closes when
    /// that word is gone (a success elsewhere deleted it).
    adopted: bool,
}

/// The circuits of every endpoint that failed lately.
#[derive(Debug, Clone)]
pub struct Breakers {
    settings: BreakerSettings,
    circuits: Arc<Mutex<HashMap<String, Circuit>>>,
    /// How many circuits are not closed, kept as they open and close (for `/metrics`).
    tripped: Gauge,
}

impl Breakers {
    pub fn new(settings: BreakerSettings, tripped: Gauge) -> Self {
        Self {
            settings,
            circuits: Arc::default(),
            tripped,
        }
    }

    /// Sets the gauge after a circuit opened or closed.
    fn count_tripped(&self, circuits: &HashMap<String, Circuit>) {
        let tripped = circuits.values().filter(|c| c.state != State::Closed);
        self.tripped.set(tripped.count() as i64);
    }

    /// Whether an attempt to `endpoint_id` may start at `now`.
    pub fn admit(&self, endpoint_id: &str, now: DateTime<Utc>) -> Admission {
        let mut circuits = self.lock();
        let Some(circuit) = circuits.get_mut(endpoint_id) else {
            return Admission::Go;
        };
        match circuit.state {
            State::Closed => Admission::Go,
            State::Open { until, .. } if now < until => Admission::GiveBack(until),
            State::Open { cooldown, .. } => {
                circuit.state = State::Probing { cooldown };
                Admission::Probe
            }
            // One probe at a time; the others wait in the queue (this node skips the
            // endpoint until the probe's answer).
            State::Probing { .. } => Admission::GiveBack(now),
        }
    }

    /// Notes the outcome of an attempt to `endpoint_id`; if the circuit opened, until when.
    pub fn record(
        &self,
        endpoint_id: &str,
        succeeded: bool,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if self.settings.failures == 0 {
            return None;
        }
        let mut circuits = self.lock();
        if succeeded {
            let closed = circuits.remove(endpoint_id);
            if closed.is_some_and(|c| c.state != State::Closed) {
                self.count_tripped(&circuits);
            }
            return None;
        }
        if circuits.len() > MEMORY {
            circuits.retain(|_, c| c.state != State::Closed);
        }
        let circuit = circuits.entry(endpoint_id.to_owned()).or_insert(Circuit {
            failures: 0,
            state: State::Closed,
            adopted: false,
        });
        circuit.failures += 1;
        let base = chrono::Duration::from_std(self.settings.cooldown).unwrap_or_default();
        let max = chrono::Duration::from_std(self.settings.max_cooldown).unwrap_or(base);
        let cooldown = match circuit.state {
            State::Closed if circuit.failures >= self.settings.failures => base,
            State::Closed => return None,
            // A failed probe: wait twice as long before the next.
            State::Probing { cooldown } => (cooldown * 2).min(max),
            // An attempt that started before the circuit opened: no change.
            State::Open { .. } => return None,
        };
        let until = now + cooldown;
        circuit.state = State::Open { until, cooldown };
        circuit.adopted = false;
        self.count_tripped(&circuits);
        Some(until)
    }

    /// Opens the circuit here until `until`, as another node did. A circuit open here for
    /// longer, or probing, is left as it is. A node with circuit breaking off adopts
    /// nothing: it would never close what it took.
    pub fn adopt(&self, endpoint_id: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Adopted {
        if until <= now || self.settings.failures == 0 {
            return Adopted::Nothing;
        }
        let mut circuits = self.lock();
        let base = chrono::Duration::from_std(self.settings.cooldown).unwrap_or_default();
        let circuit = circuits.entry(endpoint_id.to_owned()).or_insert(Circuit {
            failures: 0,
            state: State::Closed,
            adopted: true,
        });
        let (cooldown, adopted) = match circuit.state {
            State::Closed => (base, Adopted::Opened),
            State::Open {
                until: mine,
                cooldown,
            } if mine < until => (cooldown, Adopted::HeldLonger),
            State::Open { .. } | State::Probing { .. } => return Adopted::Nothing,
        };
        circuit.state = State::Open { until, cooldown };
        self.count_tripped(&circuits);
        adopted
    }

    /// Closes the circuits opened on other nodes' word that are not in `open` (the
    /// endpoints whose circuits the cluster holds open now): a success elsewhere closed
    /// them. Which it closed.
    pub fn drop_closed_elsewhere(&self, open: &HashSet<&str>) -> Vec<String> {
        let mut circuits = self.lock();
        let closed: Vec<String> = circuits
            .iter()
            .filter(|(id, c)| {
                c.adopted && matches!(c.state, State::Open { .. }) && !open.contains(id.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &closed {
            circuits.remove(id);
        }
        if !closed.is_empty() {
            self.count_tripped(&circuits);
        }
        closed
    }

    /// Another node takes the probe this one was about to send: open again until `until`.
    pub fn hold_off(&self, endpoint_id: &str, until: DateTime<Utc>) {
        if let Some(circuit) = self.lock().get_mut(endpoint_id) {
            if let State::Probing { cooldown } = circuit.state {
                circuit.state = State::Open { until, cooldown };
            }
        }
    }

    /// Whether the endpoint's circuit is open or probing.
    pub fn is_tripped(&self, endpoint_id: &str) -> bool {
        self.lock()
            .get(endpoint_id)
            .is_some_and(|c| c.state != State::Closed)
    }

    /// Until when the endpoint's circuit is open, if it is at `now`.
    pub fn open_until(&self, endpoint_id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.lock().get(endpoint_id)?.state {
            State::Open { until, .. } if until > now => Some(until),
            _ => None,
        }
    }

    /// The circuits open at `now`, with when each lets a probe through.
    pub fn open(&self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        self.lock()
            .iter()
            .filter_map(|(id, c)| match c.state {
                State::Open { until, .. } if until > now => Some((id.clone(), until)),
                _ => None,
            })
            .collect()
    }

    /// Endpoints the claimer should leave alone at `now`: open, or waiting for a probe.
    pub fn tripped(&self, now: DateTime<Utc>) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, c)| match c.state {
                State::Open { until, .. } => until > now,
                State::Probing { .. } => true,
                State::Closed => false,
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// When the next open circuit may let a probe through, if later than `now`. (One whose
    /// cool-down is over needs no wake-up: its rows are no longer skipped, and fall due.)
    pub fn next_probe_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock()
            .values()
            .filter_map(|c| match c.state {
                State::Open { until, .. } if until > now => Some(until),
                _ => None,
            })
            .min()
    }

    /// A probe that ended without an answer (given back at shutdown): the next attempt
    /// may probe at once.
    pub fn abandon_probe(&self, endpoint_id: &str, now: DateTime<Utc>) {
        if let Some(circuit) = self.lock().get_mut(endpoint_id) {
            if let State::Probing { cooldown } = circuit.state {
                circuit.state = State::Open {
                    until: now,
                    cooldown,
                };
            }
        }
    }

    /// Forgets the endpoint's circuit: it was disabled, so when its owner enables it again
    /// it starts afresh.
    pub fn forget(&self, endpoint_id: &str) {
        let mut circuits = self.lock();
        if circuits.remove(endpoint_id).is_some() {
            self.count_tripped(&circuits);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Circuit>> {
        self.circuits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers() -> Breakers {
        opening_after(3)
    }

    /// Breakers opening after `failures` in a row (0: circuit breaking off).
    fn opening_after(failures: u32) -> Breakers {
        Breakers::new(
            BreakerSettings {
                failures,
                cooldown: Duration::from_secs(10),
                max_cooldown: Duration::from_secs(25),
            },
            Gauge::default(),
        )
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breakers();
        let now = Utc::now();
        assert!(b.record("ep", false, now).is_none());
        assert!(b.record("ep", false, now).is_none());
        assert!(
            b.record("ep", true, now).is_none(),
            "a success resets the count"
        );
        assert!(b.record("ep", false, now).is_none());
        assert!(b.record("ep", false, now).is_none());
        assert_eq!(b.admit("ep", now), Admission::Go);
        assert!(
            b.record("ep", false, now).is_some(),
            "the third in a row opens it"
        );
        assert_eq!(b.admit("ep", now), Admission::GiveBack(now + secs(10)));
        assert_eq!(b.tripped(now), ["ep"]);
        assert_eq!(b.next_probe_at(now), Some(now + secs(10)));
        assert_eq!(
            b.next_probe_at(now + secs(10)),
            None,
            "a cool-down that is over is no reason to wake"
        );
        assert_eq!(b.admit("other", now), Admission::Go, "endpoints apart");
    }

    #[test]
    fn one_probe_after_the_cooldown_then_closed_or_longer_open() {
        let b = breakers();
        let t0 = Utc::now();
        for _ in 0..3 {
            b.record("ep", false, t0);
        }
        let t1 = t0 + secs(10);
        assert_eq!(b.admit("ep", t1), Admission::Probe);
        assert_eq!(
            b.admit("ep", t1),
            Admission::GiveBack(t1),
            "one probe at a time"
        );
        assert_eq!(b.tripped(t1), ["ep"]);
        assert!(
            b.record("ep", false, t1).is_some(),
            "a failed probe opens it again"
        );
        assert_eq!(b.admit("ep", t1), Admission::GiveBack(t1 + secs(20)));
        let t2 = t1 + secs(20);
        assert_eq!(b.admit("ep", t2), Admission::Probe);
        b.record("ep", false, t2);
        assert_eq!(
            b.admit("ep", t2),
            Admission::GiveBack(t2 + secs(25)),
            "capped at the maximum"
        );
        let t3 = t2 + secs(25);
        assert_eq!(b.admit("ep", t3), Admission::Probe);
        b.record("ep", true, t3);
        assert_eq!(b.admit("ep", t3), Admission::Go);
        assert!(b.tripped(t3).is_empty());
    }

    #[test]
    fn an_abandoned_probe_or_a_forgotten_circuit_does_not_stay_stuck() {
        let b = breakers();
        let t0 = Utc::now();
        for _ in 0..3 {
            b.record("ep", false, t0);
        }
        let t1 = t0 + secs(10);
        assert_eq!(b.admit("ep", t1), Admission::Probe);
        b.abandon_probe("ep", t1);
        assert_eq!(b.admit("ep", t1), Admission::Probe, "another may probe");
        b.forget("ep");
        assert_eq!(b.admit("ep", t1), Admission::Go);
        assert!(b.tripped(t1).is_empty());
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let b = Breakers::new(
            BreakerSettings {
                failures: 0,
                cooldown: Duration::from_secs(10),
                max_cooldown: Duration::from_secs(10),
            },
            Gauge::default(),
        );
        let now = Utc::now();
        for _ in 0..100 {
            assert!(b.record("ep", false, now).is_none());
        }
        assert_eq!(b.admit("ep", now), Admission::Go);
    }

    #[test]
    fn a_circuit_another_node_opened_is_open_here_until_its_probe_is_taken() {
        let b = breakers();
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(30);
        assert_eq!(
            b.adopt("ep", now, now),
            Adopted::Nothing,
            "a time already past opens nothing"
        );
        let sooner = until - chrono::Duration::seconds(10);
        assert_eq!(b.adopt("ep", sooner, now), Adopted::Opened);
        assert_eq!(b.adopt("ep", until, now), Adopted::HeldLonger);
        assert_eq!(
            b.adopt("ep", until, now),
            Adopted::Nothing,
            "the same news twice changes nothing"
        );
        assert!(b.is_tripped("ep"));
        assert_eq!(b.open_until("ep", now), Some(until));
        assert_eq!(b.tripped(now), ["ep"]);
        // Its time is up here; another node took the probe: open again until its answer.
        let later = until + chrono::Duration::seconds(1);
        assert_eq!(b.admit("ep", later), Admission::Probe);
        let answer = later + chrono::Duration::seconds(10);
        b.hold_off("ep", answer);
        assert_eq!(b.admit("ep", later), Admission::GiveBack(answer));
        // A success here closes it.
        b.record("ep", true, later);
        assert!(!b.is_tripped("ep"));

        // One closed elsewhere closes here when the cluster no longer holds it open; a
        // circuit this node opened itself stays.
        assert_eq!(b.adopt("ep", until, now), Adopted::Opened);
        for _ in 0..3 {
            b.record("own", false, now);
        }
        let held: HashSet<&str> = ["own"].into();
        assert_eq!(b.drop_closed_elsewhere(&held), ["ep"]);
        assert!(!b.is_tripped("ep"));
        assert!(b.drop_closed_elsewhere(&HashSet::new()).is_empty());
        assert!(b.is_tripped("own"));
    }

    #[test]
    fn a_node_without_circuit_breaking_adopts_no_circuit() {
        let b = opening_after(0);
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(30);
        assert_eq!(b.adopt("ep", until, now), Adopted::Nothing);
        assert!(b.tripped(now).is_empty());
    }
}
