//! The pending (shadow) model of a continuous detector: what an agent has been doing
//! since the detector first flagged it.

use serde::{Deserialize, Serialize};

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
/// A shadow that has seen nothing for this long lapses: the episode is over.
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
    pub fn hold(&mut self, x: f64, now_ms: i64, horizon: u32) {
        if self.stats.n == 0 || now_ms - self.last_ms > LAPSE_MS {
            *self = Shadow {
                since_ms: now_ms,
                ..Shadow::default()
            };
        }
        self.stats.update(x, horizon);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// The shadow's statistics, once it holds enough of a live episode to judge.
    pub fn mature(&self, now_ms: i64) -> Option<&EwStats> {
        (self.stats.n >= MATURE_SAMPLES && now_ms - self.last_ms <= LAPSE_MS).then_some(&self.stats)
    }

    /// True once the episode is mature and has lasted [`ESTABLISHED_SPAN_MS`].
    pub fn established(&self, now_ms: i64) -> bool {
        self.mature(now_ms).is_some() && self.last_ms - self.since_ms >= ESTABLISHED_SPAN_MS
    }

    /// True while an episode is under way (it has flagged observations, none older
    /// than the lapse).
    pub fn live(&self, now_ms: i64) -> bool {
        self.stats.n > 0 && now_ms - self.last_ms <= LAPSE_MS
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

    #[test]
    fn matures_then_becomes_due_after_a_day() {
        let mut shadow = Shadow::default();
        for i in 0..4 {
            shadow.hold(1.0, i * 60_000, 100);
        }
        assert!(shadow.mature(300_000).is_none());
        shadow.hold(1.0, 300_000, 100);
        assert!(shadow.mature(300_000).is_some());
        for i in 0..40 {
            shadow.hold(1.0, 400_000 + i * 3_600_000, 100);
        }
        assert!(shadow.due(400_000 + 40 * 3_600_000));
    }

    #[test]
    fn a_burst_is_mature_but_not_established() {
        let mut shadow = Shadow::default();
        for i in 0..30 {
            shadow.hold(1.0, i * 10_000, 100);
        }
        assert!(shadow.mature(300_000).is_some());
        assert!(!shadow.established(300_000));
        shadow.hold(1.0, ESTABLISHED_SPAN_MS, 100);
        assert!(shadow.established(ESTABLISHED_SPAN_MS));
    }

    #[test]
    fn a_lapsed_episode_starts_over() {
        let mut shadow = Shadow::default();
        for i in 0..10 {
            shadow.hold(1.0, i, 100);
        }
        shadow.hold(5.0, 2 * DAY_MS, 100);
        assert_eq!((shadow.stats.n, shadow.since_ms), (1, 2 * DAY_MS));
    }
}
