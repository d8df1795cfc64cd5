//! The pending (shadow) part of an agent's shared baseline: systems and hours the agent
//! was flagged on, held apart until the behaviour has persisted.
//!
//! Legitimate change looks like an anomaly the first time: a system rolled out to the
//! fleet, a working day that moved three hours later. Learning every flagged event at
//! once would let a slow attacker teach the engine; never learning them makes ordinary
//! change alert forever. So a flagged system or hour is remembered here, with the
//! evidence of its recurrence, and promoted into the baseline once it has recurred on
//! enough distinct hours or days. While it is pending, detectors treat it as known
//! news ("new behaviour, being learned") rather than a fresh anomaly. What escalated to
//! a revoked credential or a suspended agent is dropped, and stays out.

use serde::{Deserialize, Serialize};

use super::{HourOfWeek, Seen, SeenTable};
use crate::model::time::{DAY_MS, HOUR_MS};

/// Most pending systems remembered per agent; the least used gives way.
pub const MAX_PENDING_SYSTEMS: usize = 8;

/// Distinct clock hours a pending system must be used in before it is learned.
pub const SYSTEM_PROMOTION_HOURS: u32 = 3;

/// Distinct days an hour of the day must be flagged on before it is learned.
pub const HOUR_PROMOTION_DAYS: u8 = 3;

/// A pending hour of the day: flagged activity at that hour (UTC), on how many days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHour {
    /// Hour of the day, 0-23 (UTC).
    pub hour: u8,
    /// Distinct days on which it was flagged.
    pub days: u8,
    /// The latest of those days (days since the epoch).
    pub last_day: u32,
    /// Flagged events at this hour, folded into the hour-of-week profile on promotion.
    pub events: u16,
}

/// Flagged systems and hours awaiting promotion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingBaseline {
    /// Systems first touched in a flagged event; `count` is the number of distinct
    /// clock hours they were used in since.
    pub systems: SeenTable,
    /// Hours of the day with flagged activity.
    pub hours: Vec<PendingHour>,
}

/// What happened to a pending entry after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Held apart until it has recurred enough.
    Held,
    /// It has persisted long enough and now belongs to the baseline: here is its entry.
    Promoted(Seen),
}

impl PendingBaseline {
    /// True when `system` is pending: it was flagged before and is being watched.
    pub fn has_system(&self, system: &str) -> bool {
        self.systems.get(system).is_some()
    }

    /// True when activity at this hour of the day was flagged on an earlier day: a
    /// schedule that recurs is being learned, not a new anomaly.
    pub fn hour_recurs(&self, time_ms: i64) -> bool {
        let (hour, day) = hour_and_day(time_ms);
        self.hours
            .iter()
            .any(|h| h.hour == hour && h.days >= 1 && h.last_day < day)
    }

    /// Holds a flagged use of `system`. Returns [`Pending::Promoted`] (and forgets the
    /// entry) once it has been used in [`SYSTEM_PROMOTION_HOURS`] distinct hours; the
    /// caller moves it into the baseline.
    pub fn hold_system(&mut self, system: &str, time_ms: i64) -> Pending {
        let hour = time_ms.div_euclid(HOUR_MS);
        let new_hour = self
            .systems
            .get(system)
            .is_none_or(|seen| seen.last_ms.div_euclid(HOUR_MS) != hour);
        if new_hour {
            self.systems.record(system, time_ms, MAX_PENDING_SYSTEMS);
        }
        match self.systems.get(system) {
            Some(seen) if seen.count >= SYSTEM_PROMOTION_HOURS => match self.systems.remove(system)
            {
                Some(entry) => Pending::Promoted(entry),
                None => Pending::Held,
            },
            _ => Pending::Held,
        }
    }

    /// Holds a flagged event at its hour of the day. Returns the events to fold into
    /// the hour-of-week profile once the hour was flagged on [`HOUR_PROMOTION_DAYS`]
    /// distinct days.
    pub fn hold_hour(&mut self, time_ms: i64) -> Option<u16> {
        let (hour, day) = hour_and_day(time_ms);
        let index = match self.hours.iter().position(|h| h.hour == hour) {
            Some(index) => index,
            None => {
                self.hours.push(PendingHour {
                    hour,
                    days: 0,
                    last_day: 0,
                    events: 0,
                });
                self.hours.len() - 1
            }
        };
        let entry = &mut self.hours[index];
        if entry.days == 0 || entry.last_day != day {
            entry.days = entry.days.saturating_add(1);
            entry.last_day = day;
        }
        entry.events = entry.events.saturating_add(1);
        if entry.days >= HOUR_PROMOTION_DAYS {
            let events = entry.events;
            self.hours.swap_remove(index);
            return Some(events);
        }
        None
    }

    /// Drops what escalated: the system, and the hour of the day, of an event answered
    /// with a revoked credential or a suspension.
    pub fn drop_escalated(&mut self, system: Option<&str>, time_ms: Option<i64>) {
        if let Some(system) = system {
            self.systems.remove(system);
        }
        if let Some(time_ms) = time_ms {
            let (hour, _) = hour_and_day(time_ms);
            self.hours.retain(|h| h.hour != hour);
        }
    }

    /// Promotes `events` flagged events at the hour of `time_ms` into `hours`.
    pub fn promote_hour(hours: &mut HourOfWeek, time_ms: i64, events: u16) {
        for _ in 0..events.min(u16::from(u8::MAX)) {
            hours.record(time_ms);
        }
    }
}

fn hour_and_day(time_ms: i64) -> (u8, u32) {
    let hour = (time_ms.div_euclid(HOUR_MS).rem_euclid(24)) as u8;
    let day = time_ms.div_euclid(DAY_MS).clamp(0, i64::from(u32::MAX)) as u32;
    (hour, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn a_system_is_promoted_after_three_distinct_hours() {
        let mut pending = PendingBaseline::default();
        assert_eq!(pending.hold_system("ai.gateway", T0), Pending::Held);
        // Many uses within the same hour are one hour of evidence.
        for minute in 1..50 {
            assert_eq!(
                pending.hold_system("ai.gateway", T0 + minute * 60_000),
                Pending::Held
            );
        }
        assert!(pending.has_system("ai.gateway"));
        pending.hold_system("ai.gateway", T0 + HOUR_MS);
        let promoted = pending.hold_system("ai.gateway", T0 + 5 * HOUR_MS);
        assert!(
            matches!(&promoted, Pending::Promoted(seen) if seen.count == 3 && seen.first_ms == T0),
            "{promoted:?}"
        );
        assert!(!pending.has_system("ai.gateway"));
    }

    #[test]
    fn an_hour_recurs_on_a_later_day_and_is_promoted_on_the_third() {
        let mut pending = PendingBaseline::default();
        let night = T0 + 3 * HOUR_MS;
        assert_eq!(pending.hold_hour(night), None);
        assert!(
            !pending.hour_recurs(night + 60_000),
            "same day is not recurrence"
        );
        assert!(pending.hour_recurs(night + DAY_MS));
        assert_eq!(pending.hold_hour(night + DAY_MS), None);
        assert_eq!(pending.hold_hour(night + 2 * DAY_MS), Some(3));
        assert!(pending.hours.is_empty());
    }

    #[test]
    fn escalated_behaviour_is_dropped() {
        let mut pending = PendingBaseline::default();
        pending.hold_system("hr.payroll", T0);
        pending.hold_hour(T0);
        pending.drop_escalated(Some("hr.payroll"), Some(T0));
        assert!(!pending.has_system("hr.payroll"));
        assert!(pending.hours.is_empty());
    }
}
