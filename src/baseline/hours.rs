//! Hour-of-week activity.

use serde::{Deserialize, Serialize};

use crate::model::time::{hour_of_week, HOURS_PER_WEEK, HOUR_MS};

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
/// serialized as one byte string. Their sum is kept beside them (not stored): `off_hours`
/// reads it at every event, and summing 168 counters there was about 40% of its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourOfWeek {
    counts: [u8; HOURS_PER_WEEK],
    total: u32,
}

impl Default for HourOfWeek {
    fn default() -> Self {
        HourOfWeek::from_counts([0; HOURS_PER_WEEK])
    }
}

/// Bytes of the map of active hours in the sparse form.
const ACTIVE_MAP_BYTES: usize = HOURS_PER_WEEK.div_ceil(8);

/// Stored as one byte string, in whichever form is shorter: the 168 counters (an agent
/// busy around the clock), or a bit map of the active hours followed by their counters
/// (an office agent, idle most of the week, stores about 60 bytes instead of 168). The
/// length tells the forms apart: the sparse form is never 168 bytes long.
impl Serialize for HourOfWeek {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let active = self.counts.iter().filter(|&&count| count > 0).count();
        if ACTIVE_MAP_BYTES + active >= HOURS_PER_WEEK {
            return serializer.serialize_bytes(&self.counts);
        }
        let mut sparse = [0u8; HOURS_PER_WEEK];
        let mut len = ACTIVE_MAP_BYTES;
        for (hour, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                sparse[hour / 8] |= 1 << (hour % 8);
                sparse[len] = count;
                len += 1;
            }
        }
        serializer.serialize_bytes(&sparse[..len])
    }
}

impl<'de> Deserialize<'de> for HourOfWeek {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl serde::de::Visitor<'_> for BytesVisitor {
            type Value = HourOfWeek;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "{HOURS_PER_WEEK} counters, or a map of active hours and their counters"
                )
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<HourOfWeek, E> {
                if let Ok(counts) = bytes.try_into() {
                    return Ok(HourOfWeek::from_counts(counts));
                }
                let (map, mut values) = bytes
                    .split_at_checked(ACTIVE_MAP_BYTES)
                    .ok_or_else(|| E::invalid_length(bytes.len(), &self))?;
                let mut counts = [0u8; HOURS_PER_WEEK];
                for (hour, count) in counts.iter_mut().enumerate() {
                    if map[hour / 8] & (1 << (hour % 8)) != 0 {
                        let (&first, rest) = values
                            .split_first()
                            .ok_or_else(|| E::invalid_length(bytes.len(), &self))?;
                        *count = first;
                        values = rest;
                    }
                }
                if !values.is_empty() {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(HourOfWeek::from_counts(counts))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

impl HourOfWeek {
    fn from_counts(counts: [u8; HOURS_PER_WEEK]) -> Self {
        let total = counts.iter().map(|&count| u32::from(count)).sum();
        HourOfWeek { counts, total }
    }

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
            self.total = self.counts.iter().map(|&count| u32::from(count)).sum();
        }
        self.counts[slot] += 1;
        self.total += 1;
    }

    /// Relative activity per slot.
    pub fn counts(&self) -> &[u8] {
        &self.counts
    }

    /// The sum of [`HourOfWeek::counts`].
    pub fn total(&self) -> u32 {
        self.total
    }

    /// The share of the agent's weekly activity that falls between `from_ms` and
    /// `to_ms` (1 for a week or more): how much of its own working time has passed.
    /// A weekend is nothing to an office agent and two sevenths of the week to one
    /// that runs around the clock. An agent with no recorded activity is taken to work
    /// around the clock.
    pub fn activity_between(&self, from_ms: i64, to_ms: i64) -> f64 {
        let week_ms = HOURS_PER_WEEK as i64 * HOUR_MS;
        if to_ms <= from_ms {
            return 0.0;
        }
        if to_ms - from_ms >= week_ms {
            return 1.0;
        }
        let total = self.total;
        if total == 0 {
            return (to_ms - from_ms) as f64 / week_ms as f64;
        }
        let mut weighted = 0.0;
        let mut at = from_ms;
        while at < to_ms {
            let hour_end = (at.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            let until = hour_end.min(to_ms);
            let part = (until - at) as f64 / HOUR_MS as f64;
            weighted += part * f64::from(self.counts[Self::slot(at)]);
            at = until;
        }
        (weighted / f64::from(total)).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_rfc3339;

    #[test]
    fn a_weekend_is_no_time_to_an_office_agent_and_two_sevenths_of_a_week_to_a_busy_one() {
        let friday_evening = parse_rfc3339("2026-01-09T18:00:00Z").unwrap();
        let monday_morning = parse_rfc3339("2026-01-12T09:00:00Z").unwrap();
        let mut office = HourOfWeek::default();
        let mut busy = HourOfWeek::default();
        for day in 0..7 {
            for hour in 0..24 {
                let at =
                    parse_rfc3339("2026-01-05T00:00:00Z").unwrap() + (day * 24 + hour) * HOUR_MS;
                busy.record(at);
                if day < 5 && (9..17).contains(&hour) {
                    office.record(at);
                }
            }
        }
        assert_eq!(office.activity_between(friday_evening, monday_morning), 0.0);
        let busy_share = busy.activity_between(friday_evening, monday_morning);
        assert!((busy_share - 63.0 / 168.0).abs() < 1e-9, "{busy_share}");
        let workday = office.activity_between(monday_morning, monday_morning + 8 * HOUR_MS);
        assert!((workday - 0.2).abs() < 1e-9, "{workday}");
        assert_eq!(
            HourOfWeek::default().activity_between(0, 7 * 24 * HOUR_MS),
            1.0
        );
    }

    #[test]
    fn monday_midnight_is_slot_zero_and_sunday_night_the_last() {
        let monday = parse_rfc3339("2026-01-05T00:30:00Z").unwrap();
        let sunday = parse_rfc3339("2026-01-11T23:59:00Z").unwrap();
        assert_eq!(HourOfWeek::slot(monday), 0);
        assert_eq!(HourOfWeek::slot(sunday), 167);
    }

    #[test]
    fn both_stored_forms_read_back_exactly() {
        let monday = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut office = HourOfWeek::default();
        let mut busy = HourOfWeek::default();
        for hour in 0..HOURS_PER_WEEK as i64 {
            if hour % 24 >= 8 && hour % 24 < 17 && hour < 120 {
                office.record(monday + hour * 3_600_000);
            }
            for _ in 0..(hour % 5 + 1) {
                busy.record(monday + hour * 3_600_000);
            }
        }
        for (week, longest) in [(&office, 70), (&busy, 171)] {
            let bytes = postcard::to_stdvec(week).unwrap();
            assert!(bytes.len() <= longest, "{} bytes", bytes.len());
            assert_eq!(&postcard::from_bytes::<HourOfWeek>(&bytes).unwrap(), week);
        }
        let empty = postcard::to_stdvec(&HourOfWeek::default()).unwrap();
        assert_eq!(
            postcard::from_bytes::<HourOfWeek>(&empty).unwrap(),
            HourOfWeek::default()
        );
        assert!(postcard::from_bytes::<HourOfWeek>(&[3, 1, 0, 0]).is_err());
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

    #[test]
    fn the_kept_total_is_the_counters_sum_through_halvings_and_storage() {
        let monday = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut week = HourOfWeek::default();
        let sum = |week: &HourOfWeek| week.counts().iter().map(|&c| u32::from(c)).sum::<u32>();
        for n in 0..2_000i64 {
            week.record(monday + (n % 7) * 3_600_000 * (1 + n % 3));
            assert_eq!(week.total(), sum(&week), "after {n} events");
        }
        let stored = postcard::to_stdvec(&week).unwrap();
        let read: HourOfWeek = postcard::from_bytes(&stored).unwrap();
        assert_eq!(read.total(), sum(&week));
    }
}
