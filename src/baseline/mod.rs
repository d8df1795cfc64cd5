//! What the engine has learned about each agent, as the detectors read it: the shared
//! [`Baseline`] (systems, actions, credentials, hours), the [`PendingBaseline`] of
//! flagged behaviour awaiting promotion, each instance's p-value [`Calibration`], and
//! the owners' [`PeerIndex`].
//!
//! A leaf below both `state` (which stores these inside each agent's record) and
//! `detect` (whose kinds read them): detectors depend on what was learned, never on
//! how it is stored, and `state` may hold the detectors' own per-agent numbers
//! (`detect::KindState`) without an import circle.

mod hours;
mod peers;
mod pending;
mod table;

use serde::{Deserialize, Serialize};

pub use hours::HourOfWeek;
pub use peers::{PeerContext, PeerCounts, PeerIndex, PeerUse};
pub use pending::{Pending, PendingBaseline, PendingHour};
pub use table::{Seen, SeenTable};

use crate::model::Event;

/// Most distinct systems remembered per agent (see [`SeenTable`] for what gives way).
pub const MAX_SYSTEMS: usize = 64;
/// Most distinct actions remembered per agent.
pub const MAX_ACTIONS: usize = 32;
/// Most distinct credentials remembered per agent.
pub const MAX_CREDENTIALS: usize = 16;

/// What the engine has learned about an agent, shared by all detectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Event time of the agent's first event.
    pub first_seen_ms: i64,
    /// Latest event time seen.
    pub last_seen_ms: i64,
    /// Every event observed, anomalous or not (each exactly once, across restarts).
    pub events: u64,
    /// Events folded into the baseline (those no detector found anomalous).
    pub learned: u64,
    /// Latest accountable human named by the agent's events.
    pub owner: Option<compact_str::CompactString>,
    /// Systems touched, with first/last seen and counts.
    pub systems: SeenTable,
    /// Action mix.
    pub actions: SeenTable,
    /// Credentials seen.
    pub credentials: SeenTable,
    /// Hour-of-week activity.
    pub hours: HourOfWeek,
}

impl Baseline {
    /// Counts an event. Called for every event, before detectors run, so warm-up and
    /// baseline age reflect everything the agent did.
    pub fn count(&mut self, event: &Event<'_>) {
        if self.events == 0 {
            self.first_seen_ms = event.time_ms;
        }
        self.events += 1;
        self.last_seen_ms = self.last_seen_ms.max(event.time_ms);
        if let Some(owner) = &event.owner {
            if self.owner.as_deref() != Some(owner.as_ref()) {
                self.owner = Some(compact_str::CompactString::new(owner));
            }
        }
    }

    /// Folds every aspect of an event into what is normal for this agent (an event no
    /// detector flagged). Returns true if the event's credential was new to the agent.
    pub fn learn(&mut self, event: &Event<'_>) -> bool {
        let _ = self.learn_system(event);
        self.learn_hour(event.time_ms);
        self.learn_credential(event)
    }

    /// Returns true if the system was new to the agent.
    pub(crate) fn learn_system(&mut self, event: &Event<'_>) -> bool {
        self.actions
            .record(&event.action, event.time_ms, MAX_ACTIONS);
        self.systems
            .record(&event.system, event.time_ms, MAX_SYSTEMS)
    }

    pub(crate) fn learn_hour(&mut self, time_ms: i64) {
        self.learned += 1;
        self.hours.record(time_ms);
    }

    pub(crate) fn learn_credential(&mut self, event: &Event<'_>) -> bool {
        event.credential_id.as_ref().is_some_and(|credential| {
            self.credentials
                .record(credential, event.time_ms, MAX_CREDENTIALS)
        })
    }

    /// The agent's own events per day: its test rate, which turns a false-alarm budget
    /// per day into a p-value per test. Young agents count as a day old, so a burst of
    /// first events does not pass for a high rate.
    pub fn events_per_day(&self, now_ms: i64) -> f64 {
        let days = (self.age_hours(now_ms) / 24.0).max(1.0);
        (self.events as f64 / days).max(1.0)
    }

    /// Hours of event time between the agent's first event and `now_ms`.
    pub fn age_hours(&self, now_ms: i64) -> f64 {
        (now_ms - self.first_seen_ms).max(0) as f64 / 3_600_000.0
    }
}

/// Levels at which an instance's p-values are checked against their nominal rate.
pub const CALIBRATION_LEVELS: [f64; 2] = [1e-3, 1e-4];

/// Ordinary tests after an exceedance within which a further exceedance belongs to the
/// same excursion (see [`Calibration`]); below 128, as it shares a byte with a flag.
pub const EXCURSION_TESTS: u8 = 100;

/// Bit of [`Calibration::open`] set once the open excursion was counted at the deeper
/// level.
const COUNTED_DEEP: u8 = 0x80;

/// How often an agent's *ordinary* events (those not flagged) reach p-values below
/// [`CALIBRATION_LEVELS`], against how often they nominally should.
///
/// A detector's model is an approximation: an agent whose transfer sizes have a heavier
/// tail, or whose pace is burstier, than the model assumes produces small p-values more
/// often than nominal, and would spend its false-alarm budget many times over. The
/// engine measures that per agent and scales the agent's p-values by the observed excess
/// ([`Calibration::inflation`]) before comparing them with the budget, so the budget
/// holds on traffic whose shape nobody tuned the models to. Flagged events are not
/// counted, so an attack cannot buy itself a looser standard; nor are the tests of a
/// detector still in warm-up, whose forming baseline finds every first system, size
/// and hour improbable and says nothing about how the applied model fits the agent.
///
/// What is counted is *excursions*, not events: a run of exceedances of the first level,
/// each within [`EXCURSION_TESTS`] ordinary tests of the previous one, counts once at
/// each level it reaches. A burst of related events (a session of large transfers, a
/// retry loop's failures) reaches small p-values on many consecutive events but can
/// raise at most one alert, and counting each of its events would inflate the agent's
/// calibration by the length of its bursts: the agent's own real anomalies would then
/// be suppressed, the more so the longer an attack below the threshold lasts. Under the
/// null, exceedances at 1e-3 are about a thousand tests apart, so merging those within
/// a hundred loses about a tenth of them, erring towards keeping the budget's word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Ordinary events tested (halved with the counts beyond 2^20).
    pub tests: f32,
    /// Of those, how many excursions reached a p-value at or below each level.
    pub below: [f32; 2],
    /// The open excursion: tests left before it closes (0: none open), plus
    /// [`COUNTED_DEEP`] once it was counted at the deeper level.
    pub open: u8,
}

impl Calibration {
    /// Counts one ordinary event's p-value (`None`: the detector had nothing to say).
    pub fn observe(&mut self, p_value: Option<f64>) {
        if self.tests >= 1_048_576.0 {
            self.tests /= 2.0;
            self.below = self.below.map(|b| b / 2.0);
        }
        self.tests += 1.0;
        let [first, deeper] = CALIBRATION_LEVELS;
        let left = self.open & !COUNTED_DEEP;
        let mut deep = self.open & COUNTED_DEEP;
        match p_value {
            Some(p) if p <= first => {
                if left == 0 {
                    self.below[0] += 1.0;
                    deep = 0;
                }
                if p <= deeper && deep == 0 {
                    self.below[1] += 1.0;
                    deep = COUNTED_DEEP;
                }
                self.open = EXCURSION_TESTS | deep;
            }
            _ => {
                let left = left.saturating_sub(1);
                self.open = if left == 0 { 0 } else { left | deep };
            }
        }
    }

    /// How many times more often than nominal this agent's ordinary events reach small
    /// p-values (at least 1): the observed excursions at each level over the expected
    /// count, both with one pseudo-count so a young agent is taken at the model's word.
    pub fn inflation(&self) -> f64 {
        CALIBRATION_LEVELS
            .iter()
            .zip(self.below)
            .map(|(level, below)| (f64::from(below) + 1.0) / (f64::from(self.tests) * level + 1.0))
            .fold(1.0, f64::max)
    }
}

#[cfg(test)]
mod calibration_tests {
    use super::*;

    #[test]
    fn a_run_of_small_p_values_counts_as_one_excursion() {
        let mut bursty = Calibration::default();
        let mut scattered = Calibration::default();
        for i in 0..10_000 {
            // Ten bursts of 30 consecutive small p-values, with nothing or an
            // ordinary p-value between the events of a burst.
            let in_burst = i % 1_000 < 60;
            let p = match (in_burst, i % 2) {
                (true, 0) => Some(1e-5),
                (true, _) => None,
                (false, _) => Some(0.5),
            };
            bursty.observe(p);
            // Small p-values, each far from the next.
            scattered.observe(if i % 150 == 0 { Some(1e-5) } else { Some(0.5) });
        }
        assert_eq!(bursty.below, [10.0, 10.0]);
        assert_eq!(scattered.below, [67.0, 67.0]);
        // Ten excursions in 10,000 tests are nominal at 1e-3 and ten times it at 1e-4.
        assert!(
            (bursty.inflation() - 11.0 / 2.0).abs() < 1e-9,
            "{}",
            bursty.inflation()
        );
        assert!(scattered.inflation() > 25.0, "{}", scattered.inflation());
    }

    #[test]
    fn an_excursion_that_deepens_is_counted_at_each_level_once() {
        let mut calibration = Calibration::default();
        for p in [5e-4, 2e-4, 5e-5, 1e-5, 5e-4] {
            calibration.observe(Some(p));
        }
        assert_eq!(calibration.below, [1.0, 1.0]);
        for _ in 0..u32::from(EXCURSION_TESTS) {
            calibration.observe(None);
        }
        calibration.observe(Some(5e-4));
        assert_eq!(
            calibration.below,
            [2.0, 1.0],
            "a later excursion counts again"
        );
    }
}
