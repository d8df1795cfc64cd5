//! `off_hours`: activity in an hour of the week in which this agent has essentially
//! never been active.
//!
//! ## Model
//!
//! The baseline keeps the agent's activity per hour of the week (168 slots, UTC). The
//! probability that the agent's next event falls in slot `w` (day `d`, hour `h`) is a
//! hierarchical estimate:
//!
//! ```text
//! q_h = (c_h + α) / (N + 24α)                 hour-of-day share, smoothed by α
//! p_w = (c_w + β · q_h / 7) / (N + β)         slot share, shrunk towards q_h
//! ```
//!
//! with `c_w` the slot's count, `c_h` the count of hour `h` over all days, `N` the total
//! and `β` one week's worth of events (`N / weeks of history`). A young agent leans on
//! its hour-of-day profile, so its first Tuesday at 10:00 is not news when it worked
//! Monday at 10:00; an agent with months of weekday history has a quiet Saturday. The
//! reported tail probability is the total share of all slots at most twice as likely as
//! `w` (slots that are all about equally quiet must not be ranked against each other by
//! noise), and the same for the hour of the day; the larger of the two is reported, so
//! an hour is flagged only when the agent has essentially never worked at that time of
//! day *and* in that hour of the week. Days of the week an agent never works are better
//! declared in the registry (`working_hours`) than learned: weekly evidence takes weeks.
//!
//! Before the shares are taken, the agent's quiet hours of the day (under an eighth of
//! an even hour's events) are pooled: each holds their mean, the agent's background
//! ([`pool_background`]). Fleets of independently generated agents with a light
//! background around the clock (a few events a day outside the working day) showed
//! why: one quiet hour the agent had by chance not yet been seen in scored p ≈ 1e-4
//! against its neighbours' handful of events: `off_hours` raised 2–17 false alerts a
//! set (up to 0.20 per 10k events) on nine sets; pooled, one in all nine, with the
//! same recall on our simulator's off-hours attacks. An agent with no background pools
//! zeros and keeps the prior's strength: its first night hour is still news.
//!
//! The slot counters keep the week's shape (they halve on saturation), so they are
//! rescaled to the agent's learned-event count, which carries the weight of evidence.
//!
//! When the registry declares working hours, activity outside them is a fact (no
//! statistics needed), and inside them is never flagged.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fact, format_p, Positive};
use crate::baseline::{Baseline, HourOfWeek};
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::model::Anomaly;

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "off_hours",
    guards: Aspect::Hours,
    fleet: None,
    build: |text| Ok(Box::new(OffHours::new(parse_params(text)?))),
};

/// `[params]` of an `off_hours` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// α: pseudo-count per hour of the day, so an hour never seen is rare, not impossible.
    pub prior: Positive,
    /// A slot holding at least this share of the agent's activity is normal without
    /// further computation (keeps the common case cheap).
    pub usual_share: Positive,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            prior: Positive(0.5),
            usual_share: Positive(1.0 / 336.0),
        }
    }
}

/// Shares within this factor of each other are treated as equally likely.
const TIES: f64 = 2.0;

/// The detector.
#[derive(Debug)]
pub struct OffHours {
    params: Params,
}

impl OffHours {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        OffHours { params }
    }

    /// The hour-of-day shares (24) and hierarchical hour-of-week shares (168) from the
    /// slot counts. The counters keep the *shape* of the week (they halve when one
    /// saturates), so they are rescaled to `events`, the agent's learned events, which
    /// is what says how much evidence the shape rests on.
    fn hourly(&self, counts: &[u8], events: f64) -> Shares {
        // Summed in integers and scaled once per hour, as this runs at every event (the
        // shares may differ from scaling each slot in the last bit of rounding). Day by
        // day, so the sums are one vector add per day rather than a division per slot.
        let mut per_hour = [0u32; 24];
        for day in counts.chunks_exact(24) {
            for (sum, &count) in per_hour.iter_mut().zip(day) {
                *sum += u32::from(count);
            }
        }
        let total = f64::from(per_hour.iter().sum::<u32>());
        let scale = events.max(total) / total.max(1.0);
        let events = total * scale;
        let mut by_hour = per_hour.map(|count| f64::from(count) * scale);
        pool_background(&mut by_hour, events);
        let alpha = self.params.prior.0;
        Shares {
            hourly: by_hour.map(|c| (c + alpha) / (events + 24.0 * alpha)),
            scale,
            events,
        }
    }

    /// The hierarchical hour-of-week shares, shrunk towards `shares.hourly`.
    fn weekly(counts: &[u8], shares: &Shares, weeks: f64) -> [f64; 168] {
        let beta = (shares.events / weeks.max(1.0)).max(1.0);
        let mut weekly = [0.0f64; 168];
        for (day_shares, day_counts) in weekly.chunks_exact_mut(24).zip(counts.chunks_exact(24)) {
            for ((share, &count), &hourly) in
                day_shares.iter_mut().zip(day_counts).zip(&shares.hourly)
            {
                *share = (f64::from(count) * shares.scale + beta * hourly / 7.0)
                    / (shares.events + beta);
            }
        }
        weekly
    }
}

/// An hour of the day holding less than this share of an even hour's events is one of
/// the agent's quiet hours (see [`pool_background`]).
const QUIET_SHARE: f64 = 1.0 / 8.0;

/// Replaces the counts of the agent's quiet hours by their mean: the agent's background.
///
/// Outside its working day an agent has either no activity or a light background (a
/// scheduled check, a retry, a late user), spread over its quiet hours with no hour
/// preferred. At a few such events a day, any one quiet hour goes unseen for days by
/// chance: an hour-by-hour estimate would call the first event in it a one-in-ten-
/// thousand surprise, when the agent is about as likely to be active then as in any
/// other quiet hour. Pooled, each quiet hour holds the background's rate, and the tail
/// is the share of all the agent's activity that falls in its quiet hours. An agent
/// with no background pools zeros and keeps the prior's strength. The total is kept.
fn pool_background(by_hour: &mut [f64; 24], events: f64) {
    let quiet = events / 24.0 * QUIET_SHARE;
    let (sum, n) = by_hour
        .iter()
        .filter(|&&c| c < quiet)
        .fold((0.0, 0u32), |(sum, n), &c| (sum + c, n + 1));
    if n == 0 {
        return;
    }
    let background = sum / f64::from(n);
    for count in by_hour.iter_mut().filter(|c| **c < quiet) {
        *count = background;
    }
}

/// Hour-of-day shares and the rescaling of the slot counters behind them.
struct Shares {
    hourly: [f64; 24],
    scale: f64,
    events: f64,
}

/// An hour of the day whose tail probability is at least this is not quiet: the hour of
/// the week cannot make the (larger-of-two) p-value smaller, so nothing is reported and
/// the 168-slot estimate is skipped.
const NOT_QUIET_P: f64 = 0.05;

/// The total share of the values at most [`TIES`] times `share`.
fn tail(values: &[f64], share: f64) -> f64 {
    values.iter().filter(|&&v| v <= share * TIES).sum()
}

impl Detector for OffHours {
    fn new_state(&self) -> KindState {
        KindState::Stateless
    }

    fn score(&self, obs: &Observation<'_>, _state: &mut KindState) -> Option<Finding> {
        let now = obs.event.time_ms;
        if let Some(inside) = obs
            .identity
            .record
            .and_then(|r| r.within_working_hours(now))
        {
            return (!inside).then(|| fact(Anomaly::OffHours, Rule::OutsideDeclaredHours));
        }
        let counts = obs.baseline.hours.counts();
        let slot = HourOfWeek::slot(now);
        let total = obs.baseline.hours.total();
        if total == 0 || f64::from(counts[slot]) >= self.params.usual_share.0 * f64::from(total) {
            return None;
        }
        // Both the hour of the day and the hour of the week must be rare: a quiet lunch
        // hour, or the first Thursday of a young agent that works every day, is not
        // news. Slots within a factor of TIES count as equally unusual, so the tail is
        // not a rank among hours that are all about as quiet.
        let shares = self.hourly(counts, obs.baseline.learned as f64);
        let p_hour = tail(&shares.hourly, shares.hourly[slot % 24]);
        if p_hour >= NOT_QUIET_P {
            return None;
        }
        let weeks = obs.baseline.age_hours(now) / 168.0;
        let weekly = Self::weekly(counts, &shares, weeks);
        let share = weekly[slot];
        let p_value = p_hour.max(tail(&weekly, share));
        Some(Finding {
            p_value: p_value.clamp(f64::MIN_POSITIVE, 1.0),
            anomaly: Anomaly::OffHours,
            observed: share,
            expected: 1.0 / 168.0,
            unit: "share of activity in this hour of the week",
            statistic: "hierarchical hour-of-week share",
            statistic_value: f64::from(counts[slot]),
            rule: None,
            baseline_size: obs.baseline.learned,
            // Flagged at this hour of the day on an earlier day too: a working day
            // that moved is being learned, not a new anomaly each morning.
            pending_p: obs.pending.hour_recurs(now).then_some(1.0),
            magnitude: f64::INFINITY,
            learning: false,
            response_cap: None,
            fleet_only: false,
            fleet: None,
        })
    }

    /// Learned hours are not scored in warm-up; declared ones are facts and are.
    fn unscored_in_warm_up(&self, obs: &Observation<'_>) -> bool {
        obs.identity
            .record
            .and_then(|r| r.within_working_hours(obs.event.time_ms))
            .is_none()
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    /// One test per active hour: every event of an hour falls in the same slot and gets
    /// the same p-value. The agent's active hours per day are its used hour-of-week
    /// slots over the days they span (a week at most).
    fn tests_per_day(&self, baseline: &Baseline, now_ms: i64) -> f64 {
        let active = baseline.hours.counts().iter().filter(|&&c| c > 0).count();
        let days = (baseline.age_hours(now_ms) / 24.0).clamp(1.0, 7.0);
        (active as f64 / days).max(1.0)
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let when = crate::model::time::format_rfc3339(obs.event.time_ms);
        if finding.rule == Some(Rule::OutsideDeclaredHours) {
            let hours = obs
                .identity
                .record
                .and_then(|r| r.spec.working_hours.as_ref())
                .map(|w| match (&w.timezone, &w.utc_offset) {
                    (None, None) => format!("{}-{}", w.start, w.end),
                    _ => format!("{}-{} {}", w.start, w.end, w.zone_label()),
                })
                .unwrap_or_default();
            return format!(
                "{} ran {} on {} at {when}, outside its declared working hours ({hours})",
                obs.event.agent_id, obs.event.action, obs.event.system
            );
        }
        format!(
            "{} ran {} on {} at {when}, an hour of the week holding {:.2}% of its activity (a typical hour holds {:.2}%); {}",
            obs.event.agent_id,
            obs.event.action,
            obs.event.system,
            finding.observed * 100.0,
            finding.expected * 100.0,
            format_p(finding.p_value)
        )
    }

    fn explain(
        &self,
        obs: &Observation<'_>,
        _finding: &Finding,
        context: &mut BTreeMap<String, String>,
    ) {
        let slot = HourOfWeek::slot(obs.event.time_ms);
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        context.insert(
            "hour_of_week".into(),
            format!("{} {:02}:00 UTC", DAYS[slot / 24], slot % 24),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{call_line, learn_line};
    use super::*;
    use crate::baseline::Baseline;
    use crate::detect::Identity;
    use crate::model::time::{parse_rfc3339, HOUR_MS};
    use crate::model::{decode_event, Limits};

    fn p_value_at(baseline: &Baseline, time: &str) -> Option<f64> {
        let line = format!(
            r#"{{"event_id":"e","time":"{time}","agent_id":"a","action":"read","system":"crm"}}"#
        );
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        let detector = OffHours::new(Params::default());
        let pending = crate::baseline::PendingBaseline::default();
        let obs = Observation {
            event: &event,
            baseline,
            pending: &pending,
            identity: Identity::default(),
        };
        detector
            .score(&obs, &mut KindState::Stateless)
            .map(|f| f.p_value)
    }

    /// A baseline from `per_hour` events in each hour `active(hour_of_day)` says, for
    /// `days` days from Monday 2026-01-05.
    fn history(days: i64, per_hour: usize, active: impl Fn(i64) -> bool) -> Baseline {
        let start = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut baseline = Baseline::default();
        for hour in 0..days * 24 {
            if !active(hour % 24) {
                continue;
            }
            for i in 0..per_hour {
                let t = start + hour * HOUR_MS + (i as i64) * 60_000;
                learn_line(&mut baseline, &call_line(t, "read", "crm", 0, "success"));
            }
        }
        baseline
    }

    /// Counts that differ by hour and by day (Sunday, the last day, heaviest), all
    /// hours busy enough that none is pooled as background.
    fn uneven_week() -> [u8; 168] {
        std::array::from_fn(|slot| {
            let (day, hour) = (slot / 24, slot % 24);
            (10 + 3 * hour + 7 * day + if day == 6 { 40 } else { 0 }) as u8
        })
    }

    #[test]
    fn each_hour_of_the_day_sums_that_hour_on_all_seven_days() {
        let counts = uneven_week();
        let total: u32 = counts.iter().map(|&c| u32::from(c)).sum();
        let shares = OffHours::new(Params::default()).hourly(&counts, f64::from(total));
        let alpha = Params::default().prior.0;
        for hour in 0..24 {
            let sum: u32 = (0..7).map(|day| u32::from(counts[day * 24 + hour])).sum();
            let expected = (f64::from(sum) + alpha) / (f64::from(total) + 24.0 * alpha);
            assert!(
                (shares.hourly[hour] - expected).abs() <= 1e-12 * expected,
                "hour {hour}: {} against {expected}",
                shares.hourly[hour]
            );
        }
    }

    #[test]
    fn each_hour_of_the_week_is_shrunk_towards_its_own_hour_of_the_day() {
        let counts = uneven_week();
        let total: u32 = counts.iter().map(|&c| u32::from(c)).sum();
        let shares = OffHours::new(Params::default()).hourly(&counts, f64::from(total));
        let weekly = OffHours::weekly(&counts, &shares, 1.0);
        let events = shares.events;
        for (slot, &share) in weekly.iter().enumerate() {
            let own = f64::from(counts[slot]) * shares.scale;
            let expected = (own + events * shares.hourly[slot % 24] / 7.0) / (2.0 * events);
            assert!(
                (share - expected).abs() <= 1e-12 * expected,
                "slot {slot}: {share} against {expected}"
            );
        }
    }

    #[test]
    fn an_always_on_agent_is_not_flagged_on_its_first_thursday() {
        let bot = history(3, 18, |_| true);
        let p = p_value_at(&bot, "2026-01-08T13:00:00Z").unwrap_or(1.0);
        assert!(p > 0.1, "p = {p}");
    }

    #[test]
    fn an_agent_with_a_light_background_is_not_flagged_in_a_quiet_hour_it_missed_so_far() {
        // Office hours, plus one background event a day in a night hour, every night
        // hour but 03:00 in turn.
        let start = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut office = history(13, 30, |h| (8..18).contains(&h));
        let nights = [18, 19, 20, 21, 22, 23, 0, 1, 2, 4, 5, 6, 7];
        for (day, hour) in nights.into_iter().enumerate() {
            let t = start + (day as i64 * 24 + hour) * HOUR_MS;
            learn_line(&mut office, &call_line(t, "read", "crm", 0, "success"));
        }
        // 03:00 is as quiet as the night hours it was seen in: one of them, not a
        // one-in-thousands surprise.
        let p = p_value_at(&office, "2026-01-18T03:10:00Z").unwrap_or(1.0);
        assert!(p > 1e-3, "p = {p}");
    }

    #[test]
    fn an_office_agent_is_flagged_at_night_but_not_in_its_hours() {
        let office = history(4, 30, |h| (8..18).contains(&h));
        assert!(p_value_at(&office, "2026-01-09T10:30:00Z").unwrap_or(1.0) > 0.1);
        let night = p_value_at(&office, "2026-01-09T03:10:00Z").unwrap();
        assert!(night < 0.01, "p = {night}");
    }
}
