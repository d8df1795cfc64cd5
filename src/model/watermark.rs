//! Event time bounded against the source's watermark and, when running live, the wall
//! clock.
//!
//! Event time drives every window, so one event with a wrong clock could otherwise move
//! an agent's windows into the future (an event dated 2099) or reopen long-closed ones
//! (an event replayed from last quarter). Each source (a replay input, a Kafka
//! partition) keeps a [`Watermark`]: the latest event time it has accepted. An event is
//! *out of range*, and is rejected with the stable code `time_out_of_range` before the
//! engine sees it, when it is
//!
//! - more than [`TimeBounds::max_behind_ms`] behind the watermark, or
//! - more than [`TimeBounds::max_ahead_ms`] ahead of the *clock*: the wall clock when the
//!   service runs live, the watermark itself when a file is replayed (which must work
//!   on months-old data, so the wall clock has no say there).
//!
//! Live, the wall clock replaces the watermark as the reference for "ahead": a partition
//! that was quiet overnight must not refuse the morning's first event for being hours
//! ahead of the evening's last one, and since no accepted event is more than
//! `max_ahead` ahead of the wall clock, neither is the watermark.
//!
//! In a replay there is no clock, so "ahead of the watermark" also covers every quiet
//! period of the input: a night, a weekend. A bound shorter than the input's longest
//! gap would refuse the first event after it, and, the watermark staying put, every
//! event after that. Replays therefore use [`TimeBounds::REPLAY`], which tolerates gaps
//! up to `max_behind`; then an accepted outlier can move the watermark at most that far,
//! and the events after it are still within `max_behind` of it: the damage is bounded
//! and never cascades.
//!
//! The very first event of a source sets its watermark. Everything here is pure: the
//! caller passes the wall clock in, so tests and replays are deterministic.

use super::time::{format_duration, format_rfc3339, DAY_MS, HOUR_MS};

/// How far an event's time may stray from its source's watermark and the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Largest accepted lead over the clock (ms): the wall clock live, the watermark in a
    /// replay. Default 1 hour live (clock skew between producers and some buffering, not
    /// more), 7 days in a replay ([`TimeBounds::REPLAY`]).
    pub max_ahead_ms: i64,
    /// Largest accepted lag behind the watermark (ms). Default 7 days: late deliveries
    /// and retried batches pass, while an event old enough to reopen long-settled
    /// windows does not.
    pub max_behind_ms: i64,
}

impl Default for TimeBounds {
    /// The service's bounds: 1 hour ahead of the wall clock, 7 days behind the watermark.
    fn default() -> Self {
        TimeBounds {
            max_ahead_ms: HOUR_MS,
            max_behind_ms: 7 * DAY_MS,
        }
    }
}

impl TimeBounds {
    /// Replay's bounds: 7 days either side of the input's watermark. With no clock,
    /// `max_ahead` is the longest quiet period the input may have (see the module docs);
    /// it still refuses a clock that is off by years.
    pub const REPLAY: TimeBounds = TimeBounds {
        max_ahead_ms: 7 * DAY_MS,
        max_behind_ms: 7 * DAY_MS,
    };
}

/// Which bound an event broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// More than `max_ahead` ahead of the source's watermark (replay).
    AheadOfWatermark,
    /// More than `max_ahead` ahead of the wall clock (live).
    AheadOfClock,
    /// More than `max_behind` behind the source's watermark.
    BehindWatermark,
}

/// An event whose time is out of range, with the numbers that say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(self))]
pub struct OutOfRange {
    /// The event's time (ms).
    pub time_ms: i64,
    /// The watermark or wall-clock time it was compared with (ms).
    pub reference_ms: i64,
    /// The bound it broke.
    pub bound: Bound,
    /// The bound's size (ms).
    pub limit_ms: i64,
}

fn describe(out: &OutOfRange) -> String {
    let time = format_rfc3339(out.time_ms);
    let reference = format_rfc3339(out.reference_ms);
    let gap = format_duration(out.time_ms.abs_diff(out.reference_ms).min(i64::MAX as u64) as i64);
    let limit = format_duration(out.limit_ms);
    match out.bound {
        Bound::AheadOfWatermark => format!(
            "event time {time} is {gap} ahead of the source's watermark {reference} (the latest event time accepted); max_ahead is {limit}"
        ),
        Bound::AheadOfClock => format!(
            "event time {time} is {gap} ahead of the wall clock {reference}; max_ahead is {limit}"
        ),
        Bound::BehindWatermark => format!(
            "event time {time} is {gap} behind the source's watermark {reference} (the latest event time accepted); max_behind is {limit}"
        ),
    }
}

impl TimeBounds {
    /// Checks `time_ms` against `watermark` (none before a source's first event) and,
    /// live, the wall clock `clock_ms`.
    pub fn check(
        &self,
        time_ms: i64,
        watermark: Option<i64>,
        clock_ms: Option<i64>,
    ) -> Result<(), OutOfRange> {
        let out = |reference_ms, bound, limit_ms| OutOfRange {
            time_ms,
            reference_ms,
            bound,
            limit_ms,
        };
        match (clock_ms, watermark) {
            (Some(clock), _) if time_ms > clock.saturating_add(self.max_ahead_ms) => {
                return Err(out(clock, Bound::AheadOfClock, self.max_ahead_ms))
            }
            (None, Some(mark)) if time_ms > mark.saturating_add(self.max_ahead_ms) => {
                return Err(out(mark, Bound::AheadOfWatermark, self.max_ahead_ms))
            }
            _ => {}
        }
        match watermark {
            Some(mark) if time_ms < mark.saturating_sub(self.max_behind_ms) => {
                Err(out(mark, Bound::BehindWatermark, self.max_behind_ms))
            }
            _ => Ok(()),
        }
    }
}

/// The latest event time a source has accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermark {
    latest_ms: Option<i64>,
}

impl Watermark {
    /// A watermark at `latest_ms` (`None`: the source has accepted nothing yet).
    pub fn at(latest_ms: Option<i64>) -> Self {
        Watermark { latest_ms }
    }

    /// The latest event time accepted, if any.
    pub fn get(&self) -> Option<i64> {
        self.latest_ms
    }

    /// Accepts `time_ms` if it is within `bounds` (see [`TimeBounds::check`]) and
    /// advances the watermark to it if it is later. Returns the watermark after the
    /// event, which is never earlier than the event itself.
    pub fn admit(
        &mut self,
        time_ms: i64,
        bounds: &TimeBounds,
        clock_ms: Option<i64>,
    ) -> Result<i64, OutOfRange> {
        bounds.check(time_ms, self.latest_ms, clock_ms)?;
        let latest = self.latest_ms.map_or(time_ms, |mark| mark.max(time_ms));
        self.latest_ms = Some(latest);
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_rfc3339;

    fn t(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn the_first_event_sets_the_watermark_and_later_ones_advance_it() {
        let bounds = TimeBounds::default();
        let mut mark = Watermark::default();
        assert_eq!(mark.get(), None);
        // Any first event is accepted in replay, however old.
        assert_eq!(
            mark.admit(t("2026-01-05T09:00:00Z"), &bounds, None),
            Ok(t("2026-01-05T09:00:00Z"))
        );
        // A late event is accepted and leaves the watermark where it was.
        assert_eq!(
            mark.admit(t("2026-01-05T08:00:00Z"), &bounds, None),
            Ok(t("2026-01-05T09:00:00Z"))
        );
        assert_eq!(
            mark.admit(t("2026-01-05T09:30:00Z"), &bounds, None),
            Ok(t("2026-01-05T09:30:00Z"))
        );
        assert_eq!(mark.get(), Some(t("2026-01-05T09:30:00Z")));
    }

    #[test]
    fn replay_bounds_are_relative_to_the_watermark_only() {
        let bounds = TimeBounds::default();
        let mark = Some(t("2026-01-05T09:00:00Z"));
        let check = |time: &str| bounds.check(t(time), mark, None).map_err(|e| e.bound);
        assert_eq!(
            check("2026-01-05T10:00:00Z"),
            Ok(()),
            "exactly max_ahead is in range"
        );
        assert_eq!(
            check("2026-01-05T10:00:00.001Z"),
            Err(Bound::AheadOfWatermark)
        );
        assert_eq!(check("2099-01-01T00:00:00Z"), Err(Bound::AheadOfWatermark));
        assert_eq!(
            check("2025-12-29T09:00:00Z"),
            Ok(()),
            "exactly max_behind is in range"
        );
        assert_eq!(
            check("2025-12-29T08:59:59.999Z"),
            Err(Bound::BehindWatermark)
        );
        assert_eq!(check("2025-12-06T09:00:00Z"), Err(Bound::BehindWatermark));
    }

    #[test]
    fn live_the_wall_clock_bounds_how_far_ahead_an_event_may_be() {
        let bounds = TimeBounds::default();
        let now = t("2026-03-02T12:00:00Z");
        // The first event of a partition: only the clock applies.
        assert_eq!(
            bounds.check(t("2026-03-02T12:59:00Z"), None, Some(now)),
            Ok(())
        );
        let err = bounds
            .check(t("2099-01-01T00:00:00Z"), None, Some(now))
            .unwrap_err();
        assert_eq!((err.bound, err.reference_ms), (Bound::AheadOfClock, now));
        // After a quiet night the morning's first event is hours ahead of the watermark
        // but not of the clock: it is in range.
        let evening = Some(t("2026-03-01T18:00:00Z"));
        assert_eq!(
            bounds.check(t("2026-03-02T11:59:00Z"), evening, Some(now)),
            Ok(())
        );
        // Months-old events are judged against the watermark, not the clock.
        let old_mark = Some(t("2025-06-01T00:00:00Z"));
        assert_eq!(
            bounds.check(t("2025-05-31T00:00:00Z"), old_mark, Some(now)),
            Ok(())
        );
        assert_eq!(
            bounds
                .check(t("2025-05-01T00:00:00Z"), old_mark, Some(now))
                .map_err(|e| e.bound),
            Err(Bound::BehindWatermark)
        );
    }

    #[test]
    fn replay_bounds_tolerate_quiet_periods_and_an_outlier_does_not_cascade() {
        let bounds = TimeBounds::REPLAY;
        let mut mark = Watermark::default();
        // Friday evening, then Monday morning: a weekend's gap is no reason to refuse.
        assert!(mark.admit(t("2026-01-09T17:00:00Z"), &bounds, None).is_ok());
        assert!(mark.admit(t("2026-01-12T09:00:00Z"), &bounds, None).is_ok());
        assert!(mark
            .admit(t("2099-01-01T00:00:00Z"), &bounds, None)
            .is_err());
        assert!(mark
            .admit(t("2025-12-01T00:00:00Z"), &bounds, None)
            .is_err());
        // An outlier within the bound moves the watermark, but the events after it are
        // still within max_behind of it.
        assert!(mark.admit(t("2026-01-18T09:00:00Z"), &bounds, None).is_ok());
        assert!(mark.admit(t("2026-01-12T09:05:00Z"), &bounds, None).is_ok());
    }

    #[test]
    fn a_rejected_event_leaves_the_watermark_alone() {
        let bounds = TimeBounds::default();
        let mut mark = Watermark::at(Some(t("2026-01-05T09:00:00Z")));
        assert!(mark
            .admit(t("2099-01-01T00:00:00Z"), &bounds, None)
            .is_err());
        assert!(mark
            .admit(t("2025-12-01T00:00:00Z"), &bounds, None)
            .is_err());
        assert_eq!(mark.get(), Some(t("2026-01-05T09:00:00Z")));
    }

    #[test]
    fn bounds_saturate_instead_of_overflowing() {
        let wide = TimeBounds {
            max_ahead_ms: i64::MAX,
            max_behind_ms: i64::MAX,
        };
        assert_eq!(wide.check(i64::MAX, Some(0), Some(i64::MAX)), Ok(()));
        assert_eq!(wide.check(0, Some(i64::MAX), None), Ok(()));
    }

    #[test]
    fn messages_give_the_gap_the_reference_and_the_bound() {
        let bounds = TimeBounds::default();
        let err = bounds
            .check(
                t("2026-01-05T12:00:00Z"),
                Some(t("2026-01-05T09:00:00Z")),
                None,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "event time 2026-01-05T12:00:00.000Z is 3h ahead of the source's watermark 2026-01-05T09:00:00.000Z (the latest event time accepted); max_ahead is 1h"
        );
        let err = bounds
            .check(
                t("2025-12-06T09:00:00Z"),
                Some(t("2026-01-05T09:00:00Z")),
                None,
            )
            .unwrap_err();
        assert!(err.to_string().contains("is 30d behind"), "{err}");
    }
}
