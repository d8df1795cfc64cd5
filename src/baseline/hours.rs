//! Hour-of-week activity.

use serde::{Deserialize, Serialize};

use crate::model::time::{hour_of_week, HOURS_PER_WEEK};

/// How active the agent is in each of the 168 hours of the week (UTC, Monday 00:00 first).
///
/// One byte per hour keeps this at 168 bytes per agent. When an hour's counter would
/// overflow, every counter is halved: the *shape* of the week (which hours are normal)
/// is what detectors and owners need, and halving keeps it while adapting slowly.
/// Halving rounds up, so an hour the agent has worked in never reads as one it has
/// never worked in: a busy agent's peak hours saturate the counters again and again,
/// and rounding down would erase its quieter hours (and with them its count of active
/// hours, which sets `off_hours`' test rate).
///
/// The counters are stored inline (no separate allocation to chase on the hot path) and
/// serialized as one byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourOfWeek {
    counts: [u8; HOURS_PER_WEEK],
}

impl Default for HourOfWeek {
    fn default() -> Self {
        HourOfWeek {
            counts: [0; HOURS_PER_WEEK],
        }
    }
}

impl Serialize for HourOfWeek {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.counts)
    }
}

impl<'de> Deserialize<'de> for HourOfWeek {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl serde::de::Visitor<'_> for BytesVisitor {
            type Value = HourOfWeek;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{HOURS_PER_WEEK} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<HourOfWeek, E> {
                let counts = bytes
                    .try_into()
                    .map_err(|_| E::invalid_length(bytes.len(), &self))?;
                Ok(HourOfWeek { counts })
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

impl HourOfWeek {
    /// The hour-of-week slot (0 = Monday 00:00-01:00 UTC) of an event time.
    pub fn slot(time_ms: i64) -> usize {
        hour_of_week(time_ms)
    }

    /// Records one event.
    pub fn record(&mut self, time_ms: i64) {
        let slot = Self::slot(time_ms);
        if self.counts[slot] == u8::MAX {
            for count in &mut self.counts {
                *count = count.div_ceil(2);
            }
        }
        self.counts[slot] += 1;
    }

    /// Relative activity per slot.
    pub fn counts(&self) -> &[u8] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_rfc3339;

    #[test]
    fn monday_midnight_is_slot_zero_and_sunday_night_the_last() {
        let monday = parse_rfc3339("2026-01-05T00:30:00Z").unwrap();
        let sunday = parse_rfc3339("2026-01-11T23:59:00Z").unwrap();
        assert_eq!(HourOfWeek::slot(monday), 0);
        assert_eq!(HourOfWeek::slot(sunday), 167);
    }

    #[test]
    fn saturation_halves_but_keeps_the_shape() {
        let mut week = HourOfWeek::default();
        let busy = parse_rfc3339("2026-01-05T09:00:00Z").unwrap();
        let quiet = parse_rfc3339("2026-01-05T10:00:00Z").unwrap();
        for _ in 0..100 {
            week.record(quiet);
        }
        for _ in 0..400 {
            week.record(busy);
        }
        let counts = week.counts();
        assert!(counts[9] > counts[10] && counts[10] > 0);
    }

    #[test]
    fn an_hour_once_worked_in_survives_any_number_of_halvings() {
        let mut week = HourOfWeek::default();
        let busy = parse_rfc3339("2026-01-05T09:00:00Z").unwrap();
        let once = parse_rfc3339("2026-01-05T03:00:00Z").unwrap();
        week.record(once);
        for _ in 0..10_000 {
            week.record(busy);
        }
        assert_eq!(week.counts()[3], 1);
        assert!(week.counts()[9] > 100);
    }
}
