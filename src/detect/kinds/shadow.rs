//! The pending (shadow) model of a continuous detector: what an agent has been doing
//! since the detector first flagged it.

use serde::{Deserialize, Serialize};

use crate::baseline::HourOfWeek;
use crate::model::time::DAY_MS;
use crate::stats::EwStats;

/// Flagged observations a shadow needs before it may explain a finding. Fewer, and the
/// second transfer of an exfiltration would already be "the new normal".
pub const MATURE_SAMPLES: u32 = 5;
/// How long an episode must have lasted before it explains more than single
/// observations (a detector's bursts, say). A burst is one event however many
/// observations it holds; a change of habit shows over hours, and two hours is the
/// least that reads as one: were a burst's episode enough, a second attack hours after
/// a first (or after a heavy but benign session) would pass as its continuation.
pub const ESTABLISHED_SPAN_MS: i64 = 2 * 3_600_000;
/// Observations a shadow needs before it may be promoted.
pub const PROMOTE_SAMPLES: u32 = 30;
/// How long a change must persist before it becomes the baseline: a day, so a change
/// must survive a full daily cycle, and an attack must last a day unchallenged.
pub const PROMOTE_AFTER_MS: i64 = DAY_MS;
/// A shadow that has seen nothing for a day, by the clock ([`LAPSE_MS`]) and by the
/// agent's own activity (this share of its week, by its hour-of-week profile), lapses:
/// the episode is over. Counting the agent's working time as well as the clock's keeps
/// a change that began on a Friday alive over the weekend of an agent that does not
/// work then; by the clock alone it lapsed on Saturday and came back on Monday as a
/// new episode, alerting afresh.
pub const LAPSE_ACTIVITY: f64 = 1.0 / 7.0;
/// See [`LAPSE_ACTIVITY`].
pub const LAPSE_MS: i64 = DAY_MS;

/// Running statistics of the flagged observations of one episode, and its span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    /// Distribution of the flagged observations.
    pub stats: EwStats,
    /// First flagged observation of the episode (event time).
    pub since_ms: i64,
    /// Latest flagged observation.
    pub last_ms: i64,
}

impl Shadow {
    /// Holds a flagged observation `x`, starting a new episode if the last one lapsed.
    pub fn hold(&mut self, x: f64, now_ms: i64, horizon: u32, hours: &HourOfWeek) {
        if self.stats.n == 0 || self.lapsed(now_ms, hours) {
            *self = Shadow {
                since_ms: now_ms,
                ..Shadow::default()
            };
        }
        self.stats.update(x, horizon);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// True once a day, and a day of the agent's activity, have passed since the latest
    /// flagged observation (see [`LAPSE_ACTIVITY`]).
    fn lapsed(&self, now_ms: i64, hours: &HourOfWeek) -> bool {
        now_ms - self.last_ms > LAPSE_MS
            && hours.activity_between(self.last_ms, now_ms) >= LAPSE_ACTIVITY
    }

    /// The shadow's statistics, once it holds enough of a live episode to judge.
    pub fn mature(&self, now_ms: i64, hours: &HourOfWeek) -> Option<&EwStats> {
        (self.stats.n >= MATURE_SAMPLES && !self.lapsed(now_ms, hours)).then_some(&self.stats)
    }

    /// True once the episode is mature and has lasted [`ESTABLISHED_SPAN_MS`].
    pub fn established(&self, now_ms: i64, hours: &HourOfWeek) -> bool {
        self.mature(now_ms, hours).is_some() && self.last_ms - self.since_ms >= ESTABLISHED_SPAN_MS
    }

    /// True while an episode is under way (it has flagged observations, and has not
    /// lapsed).
    pub fn live(&self, now_ms: i64, hours: &HourOfWeek) -> bool {
        self.stats.n > 0 && !self.lapsed(now_ms, hours)
    }

    /// True once the episode has persisted long enough to become the baseline.
    pub fn due(&self, now_ms: i64) -> bool {
        self.stats.n >= PROMOTE_SAMPLES && now_ms - self.since_ms >= PROMOTE_AFTER_MS
    }

    /// Forgets the episode (promoted, or escalated).
    pub fn clear(&mut self) {
        *self = Shadow::default();
    }
}

/// Serde adapter storing a shadow with no episode as one byte (`None`) instead of about
/// twenty: most agents, most of the time, have nothing pending.
pub mod stored_if_live {
    use super::Shadow;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `None` for an empty shadow, else the shadow.
    pub fn serialize<S: Serializer>(shadow: &Shadow, serializer: S) -> Result<S::Ok, S::Error> {
        (shadow.stats.n > 0).then_some(shadow).serialize(serializer)
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Shadow, D::Error> {
        Ok(Option::<Shadow>::deserialize(deserializer)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::{parse_rfc3339, HOUR_MS};

    #[test]
    fn matures_then_becomes_due_after_a_day() {
        let around_the_clock = HourOfWeek::default();
        let mut shadow = Shadow::default();
        for i in 0..4 {
            shadow.hold(1.0, i * 60_000, 100, &around_the_clock);
        }
        assert!(shadow.mature(300_000, &around_the_clock).is_none());
        shadow.hold(1.0, 300_000, 100, &around_the_clock);
        assert!(shadow.mature(300_000, &around_the_clock).is_some());
        for i in 0..40 {
            shadow.hold(1.0, 400_000 + i * 3_600_000, 100, &around_the_clock);
        }
        assert!(shadow.due(400_000 + 40 * 3_600_000));
    }

    #[test]
    fn a_burst_is_mature_but_not_established() {
        let around_the_clock = HourOfWeek::default();
        let mut shadow = Shadow::default();
        for i in 0..30 {
            shadow.hold(1.0, i * 10_000, 100, &around_the_clock);
        }
        assert!(shadow.mature(300_000, &around_the_clock).is_some());
        assert!(!shadow.established(300_000, &around_the_clock));
        shadow.hold(1.0, ESTABLISHED_SPAN_MS, 100, &around_the_clock);
        assert!(shadow.established(ESTABLISHED_SPAN_MS, &around_the_clock));
    }

    #[test]
    fn a_lapsed_episode_starts_over() {
        let around_the_clock = HourOfWeek::default();
        let mut shadow = Shadow::default();
        for i in 0..10 {
            shadow.hold(1.0, i, 100, &around_the_clock);
        }
        shadow.hold(5.0, 2 * DAY_MS, 100, &around_the_clock);
        assert_eq!((shadow.stats.n, shadow.since_ms), (1, 2 * DAY_MS));
    }

    #[test]
    fn an_office_agents_episode_lives_over_the_weekend_and_lapses_after_a_working_day() {
        let monday = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut office = HourOfWeek::default();
        for day in 0..5 {
            for hour in 9..17 {
                office.record(monday + (day * 24 + hour) * HOUR_MS);
            }
        }
        let friday_afternoon = monday + (4 * 24 + 15) * HOUR_MS;
        let mut shadow = Shadow::default();
        for i in 0..10 {
            shadow.hold(1.0, friday_afternoon + i * 60_000, 100, &office);
        }
        let next_monday_morning = monday + (7 * 24 + 9) * HOUR_MS;
        assert!(shadow.live(next_monday_morning, &office));
        assert!(shadow.mature(next_monday_morning, &office).is_some());
        let next_tuesday_morning = next_monday_morning + 24 * HOUR_MS;
        assert!(!shadow.live(next_tuesday_morning, &office));
        let around_the_clock = HourOfWeek::default();
        assert!(!shadow.live(next_monday_morning, &around_the_clock));
    }
}
