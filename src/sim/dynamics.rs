//! Legitimate dynamics: the ordinary changes every real fleet goes through (a rollout,
//! an outage, new jobs, new shifts, daylight saving, agents joining and leaving).
//!
//! None of them is an incident, so none is labelled; each is written to the changes list
//! instead ([`Change`]). They are planned before any traffic (like attacks), each kind
//! from its own seeded generator, so adding one kind to a scenario does not move the
//! others, and a scenario without changes produces exactly the traffic it always did.

use std::collections::BTreeMap;

use super::changes::Change;
use super::profiles::{AgentSpec, Profile};
use super::rng::SimRng;
use super::scenario::{ChangeKind, Scenario};
use crate::model::time::{format_rfc3339, DAY_MS, HOUR_MS};
use crate::model::Outcome;

/// The system a `rollout` introduces; no agent uses it before.
pub const ROLLOUT_SYSTEM: &str = "ai.gateway";
const MINUTE_MS: i64 = 60_000;
/// Share of the fleet that adopts the rolled-out system.
const ROLLOUT_SHARE: f64 = 0.6;
/// Hours over which adopters take it up.
const ROLLOUT_HOURS: u64 = 4;
const OUTAGE_MS: i64 = 90 * MINUTE_MS;
/// Percentage of calls to a system that is down that come back `denied` (its auth
/// layer refuses); the rest come back `failure`.
pub(super) const OUTAGE_DENIED_PERCENT: u32 = 15;
/// Retries a caller makes at most after a call fails in an outage.
pub(super) const MAX_RETRIES: u32 = 3;
/// Chance that a caller retries a call that failed in an outage.
pub(super) const RETRY_CHANCE: f64 = 0.6;
const JOB_CHANGE_SHARE: f64 = 0.08;
/// Pace multiplier after a job change.
pub(super) const JOB_PACE: f64 = 2.0;
/// Transfer-size multiplier after a job change.
pub(super) const JOB_BYTES: f64 = 3.0;
const SHIFT_SHARE: f64 = 0.03;
/// Hours a shift change moves the working day later.
pub(super) const SHIFT_HOURS: i64 = 3;
/// UTC offsets of the office zones that observe daylight saving (European zones, whose
/// clocks all go forward at 01:00 UTC on the same Sunday).
const DST_OFFSETS: std::ops::RangeInclusive<i64> = 0..=2;
const JOINER_SHARE: f64 = 0.05;
const RETIRE_SHARE: f64 = 0.02;

/// When an agent takes up the rolled-out system, and how it uses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Adoption {
    /// From when.
    pub at_ms: i64,
    /// Share of its normal calls that go to the new system.
    pub share: f64,
    /// Median bytes per call to it.
    pub median_bytes: f64,
}

/// What changes for one agent, and when (`None`: never).
#[derive(Debug, Clone, Default, PartialEq)]
struct Timeline {
    joins_ms: Option<i64>,
    retires_ms: Option<i64>,
    job_change_ms: Option<i64>,
    shift_ms: Option<i64>,
    dst_ms: Option<i64>,
    adoption: Option<Adoption>,
}

/// A shared system that is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outage {
    /// The system.
    pub system: String,
    /// First minute down.
    pub start_ms: i64,
    /// First minute up again.
    pub end_ms: i64,
}

/// The planned dynamics of a simulation, and the activity model that applies them.
#[derive(Debug, Clone, Default)]
pub(super) struct Dynamics {
    seed: u64,
    start_ms: i64,
    /// One per agent; empty when nothing changes for any agent (the fast, original path).
    timelines: Vec<Timeline>,
    outage: Option<Outage>,
    changes: Vec<Change>,
}

impl Dynamics {
    /// Plans the changes `scenario` asks for over `days` days from `start_ms`. Kinds that
    /// need more days than there are (most start after day 5) are left out.
    pub(super) fn plan(
        agents: &[AgentSpec],
        seed: u64,
        start_ms: i64,
        days: u32,
        scenario: Scenario,
    ) -> Self {
        let mut dynamics = Dynamics {
            seed,
            start_ms,
            ..Dynamics::default()
        };
        if !scenario.has_changes() || agents.is_empty() {
            return dynamics;
        }
        dynamics.timelines = vec![Timeline::default(); agents.len()];
        let days = i64::from(days);
        for kind in ChangeKind::ALL.into_iter().filter(|k| scenario.has(*k)) {
            let mut rng = SimRng::new(seed ^ (0xD7A3_1C50_0000 + kind as u64));
            match kind {
                ChangeKind::Rollout => dynamics.rollout(agents, days, &mut rng),
                ChangeKind::Outage => dynamics.outage(agents, days, &mut rng),
                ChangeKind::JobChange => dynamics.job_change(agents, days, &mut rng),
                ChangeKind::ShiftChange => dynamics.shift_change(agents, days, &mut rng),
                ChangeKind::Dst => dynamics.dst(agents, days),
                ChangeKind::Joiners => dynamics.joiners(agents, days, &mut rng),
                ChangeKind::Retire => dynamics.retire(agents, days, &mut rng),
            }
        }
        dynamics
            .changes
            .sort_by(|a, b| (&a.start, &a.kind).cmp(&(&b.start, &b.kind)));
        dynamics
    }

    /// What changed, in start order.
    pub(super) fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Expected calls of `agent` in the minute starting at `minute_ms`, with every change
    /// that applies to it then.
    pub(super) fn rate_at(&self, agent: &AgentSpec, minute_ms: i64) -> f64 {
        let Some(t) = self.timelines.get(agent.index) else {
            return agent.rate_at(self.seed, self.start_ms, minute_ms);
        };
        let since = |at: Option<i64>| at.is_some_and(|at| minute_ms >= at);
        if t.joins_ms.is_some_and(|at| minute_ms < at) || since(t.retires_ms) {
            return 0.0;
        }
        let mut offset = agent.utc_offset_h;
        if since(t.shift_ms) {
            offset -= SHIFT_HOURS;
        }
        if since(t.dst_ms) {
            offset += 1;
        }
        let rate = agent.rate_with_offset(self.seed, self.start_ms, minute_ms, offset);
        if since(t.job_change_ms) {
            rate * JOB_PACE
        } else {
            rate
        }
    }

    /// How much larger than its original sizes `agent`'s transfers are at `time_ms`.
    pub(super) fn bytes_factor(&self, agent: &AgentSpec, time_ms: i64) -> f64 {
        let changed = self
            .timelines
            .get(agent.index)
            .and_then(|t| t.job_change_ms)
            .is_some_and(|at| time_ms >= at);
        if changed {
            JOB_BYTES
        } else {
            1.0
        }
    }

    /// The agent's use of the rolled-out system, once it has adopted it.
    pub(super) fn adoption(&self, agent: &AgentSpec, time_ms: i64) -> Option<Adoption> {
        self.timelines
            .get(agent.index)?
            .adoption
            .filter(|a| time_ms >= a.at_ms)
    }

    /// Agents that adopt the rolled-out system (at some point).
    pub(super) fn adopters(&self) -> impl Iterator<Item = usize> + '_ {
        self.timelines
            .iter()
            .enumerate()
            .filter(|(_, t)| t.adoption.is_some())
            .map(|(i, _)| i)
    }

    /// Whether `system` is down at `time_ms`.
    pub(super) fn is_down(&self, system: &str, time_ms: i64) -> bool {
        self.outage
            .as_ref()
            .is_some_and(|o| o.system == system && (o.start_ms..o.end_ms).contains(&time_ms))
    }

    /// The first day (0-based) on which `agent` may work: after it joins.
    pub(super) fn first_day(&self, agent: &AgentSpec) -> i64 {
        self.timelines
            .get(agent.index)
            .and_then(|t| t.joins_ms)
            .map_or(0, |at| (at - self.start_ms + DAY_MS - 1).div_euclid(DAY_MS))
    }

    fn day_start(&self, day: i64) -> i64 {
        self.start_ms + day * DAY_MS
    }

    fn record(
        &mut self,
        kind: ChangeKind,
        agents: Vec<String>,
        span: (i64, Option<i64>),
        system: Option<&str>,
        detail: String,
    ) {
        self.changes.push(Change {
            kind: kind.name().to_owned(),
            agents,
            start: format_rfc3339(span.0),
            end: span.1.map(format_rfc3339),
            system: system.map(str::to_owned),
            detail,
        });
    }

    fn rollout(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let Some(day) = pick_day(rng, 4, days - 3) else {
            return;
        };
        let start = self.day_start(day) + 9 * HOUR_MS + minutes(rng, 60);
        let chosen = choose(
            rng,
            (0..agents.len()).collect(),
            share(agents, ROLLOUT_SHARE),
        );
        let mut first = i64::MAX;
        let mut last = i64::MIN;
        for &i in &chosen {
            let at = start + minutes(rng, ROLLOUT_HOURS * 60);
            first = first.min(at);
            last = last.max(at);
            self.timelines[i].adoption = Some(Adoption {
                at_ms: at,
                share: rng.uniform(0.1, 0.3),
                median_bytes: agents[i].typical_bytes() * rng.uniform(0.5, 2.0),
            });
        }
        let detail = format!(
            "{} of {} agents take up {ROLLOUT_SYSTEM} over {ROLLOUT_HOURS} h and send it 10-30% of their calls from then on",
            chosen.len(),
            agents.len()
        );
        let ids = ids(agents, &chosen);
        self.record(
            ChangeKind::Rollout,
            ids,
            (first, Some(last)),
            Some(ROLLOUT_SYSTEM),
            detail,
        );
    }

    fn outage(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let mut users: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for agent in agents {
            for system in &agent.systems {
                users.entry(&system.name).or_default().push(agent.index);
            }
        }
        let mut busiest: Option<(&str, &Vec<usize>)> = None;
        for (system, list) in &users {
            if busiest.is_none_or(|(_, most)| list.len() > most.len()) {
                busiest = Some((system, list));
            }
        }
        let weekdays: Vec<i64> = (5..=days - 2).filter(|d| d.rem_euclid(7) < 5).collect();
        let (Some((system, list)), false) = (busiest, weekdays.is_empty()) else {
            return;
        };
        let day = weekdays[rng.below(weekdays.len() as u64) as usize];
        let start = self.day_start(day) + 13 * HOUR_MS + minutes(rng, 120);
        let outage = Outage {
            system: system.to_owned(),
            start_ms: start,
            end_ms: start + OUTAGE_MS,
        };
        let ids = ids(agents, list);
        let detail = format!(
            "{system} is down for 90 min: every call to it fails ({}% failure, the rest denied) and callers retry up to {} times",
            100 - OUTAGE_DENIED_PERCENT,
            MAX_RETRIES
        );
        self.record(
            ChangeKind::Outage,
            ids,
            (outage.start_ms, Some(outage.end_ms)),
            Some(system),
            detail,
        );
        self.outage = Some(outage);
    }

    fn job_change(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let chosen = choose(
            rng,
            (0..agents.len()).collect(),
            share(agents, JOB_CHANGE_SHARE),
        );
        for i in chosen {
            let Some(day) = pick_day(rng, 5, days - 3) else {
                return;
            };
            let at = self.day_start(day);
            self.timelines[i].job_change_ms = Some(at);
            let detail = format!("new job for good: pace x{JOB_PACE}, transfer sizes x{JOB_BYTES}");
            self.record(
                ChangeKind::JobChange,
                vec![agents[i].id.clone()],
                (at, None),
                None,
                detail,
            );
        }
    }

    fn shift_change(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let office: Vec<usize> = agents
            .iter()
            .filter(|a| a.working_hours().is_some())
            .map(|a| a.index)
            .collect();
        let count = share(agents, SHIFT_SHARE).min(office.len());
        for i in choose(rng, office, count) {
            let Some(day) = pick_day(rng, 5, days - 3) else {
                return;
            };
            let at = self.day_start(day);
            self.timelines[i].shift_ms = Some(at);
            let (open, close) = agents[i].working_hours().unwrap_or((8, 18));
            let detail = format!(
                "working day {SHIFT_HOURS} h later for good: local {open:02}-{close:02} becomes {:02}-{:02}",
                open + SHIFT_HOURS,
                close + SHIFT_HOURS
            );
            self.record(
                ChangeKind::ShiftChange,
                vec![agents[i].id.clone()],
                (at, None),
                None,
                detail,
            );
        }
    }

    fn dst(&mut self, agents: &[AgentSpec], days: i64) {
        let zone: Vec<usize> = agents
            .iter()
            .filter(|a| a.profile == Profile::OfficeAssistant)
            .filter(|a| DST_OFFSETS.contains(&a.utc_offset_h))
            .map(|a| a.index)
            .collect();
        // The last Sunday with at least a working week after it.
        let sunday = (6..=days - 6).rev().find(|d| d.rem_euclid(7) == 6);
        let (Some(day), false) = (sunday, zone.is_empty()) else {
            return;
        };
        let at = self.day_start(day) + HOUR_MS;
        for &i in &zone {
            self.timelines[i].dst_ms = Some(at);
        }
        let detail = "clocks go forward 1 h in the agents' zones (UTC+0 to UTC+2): the same local working hours start 1 h earlier in UTC; the registry keeps fixed offsets".to_owned();
        let ids = ids(agents, &zone);
        self.record(ChangeKind::Dst, ids, (at, None), None, detail);
    }

    fn joiners(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let chosen = choose(
            rng,
            (0..agents.len()).collect(),
            share(agents, JOINER_SHARE),
        );
        for i in chosen {
            let Some(day) = pick_day(rng, 5, (days - 5).max(5).min(days - 1)) else {
                return;
            };
            let at = self.day_start(day) + minutes(rng, 24 * 60);
            self.timelines[i].joins_ms = Some(at);
            self.record(
                ChangeKind::Joiners,
                vec![agents[i].id.clone()],
                (at, None),
                None,
                "joins the fleet: no events before".to_owned(),
            );
        }
    }

    fn retire(&mut self, agents: &[AgentSpec], days: i64, rng: &mut SimRng) {
        let staying: Vec<usize> = (0..agents.len())
            .filter(|&i| self.timelines[i].joins_ms.is_none())
            .collect();
        let count = share(agents, RETIRE_SHARE).min(staying.len());
        for i in choose(rng, staying, count) {
            let Some(day) = pick_day(rng, 5, days - 2) else {
                return;
            };
            let at = self.day_start(day) + minutes(rng, 24 * 60);
            self.timelines[i].retires_ms = Some(at);
            self.record(
                ChangeKind::Retire,
                vec![agents[i].id.clone()],
                (at, None),
                None,
                "stops for good: no events after".to_owned(),
            );
        }
    }
}

/// The outcome of a call to a system that is down, from a uniform `roll` in [0, 1).
pub(super) fn outage_outcome(roll: f64) -> Outcome {
    if roll * 100.0 < f64::from(OUTAGE_DENIED_PERCENT) {
        Outcome::Denied
    } else {
        Outcome::Failure
    }
}

/// A day in `lo..=hi`, if there is one.
fn pick_day(rng: &mut SimRng, lo: i64, hi: i64) -> Option<i64> {
    (hi >= lo).then(|| lo + rng.below((hi - lo + 1) as u64) as i64)
}

/// A whole number of minutes below `limit`, in milliseconds.
fn minutes(rng: &mut SimRng, limit: u64) -> i64 {
    rng.below(limit) as i64 * MINUTE_MS
}

/// `fraction` of the fleet, rounded, at least one agent.
fn share(agents: &[AgentSpec], fraction: f64) -> usize {
    ((agents.len() as f64 * fraction).round() as usize).clamp(1, agents.len())
}

/// `count` distinct entries of `pool`, drawn without replacement.
pub(super) fn choose(rng: &mut SimRng, mut pool: Vec<usize>, count: usize) -> Vec<usize> {
    (0..count.min(pool.len()))
        .map(|_| pool.swap_remove(rng.below(pool.len() as u64) as usize))
        .collect()
}

/// The ids of `indices`, sorted.
fn ids(agents: &[AgentSpec], indices: &[usize]) -> Vec<String> {
    let mut ids: Vec<String> = indices.iter().map(|&i| agents[i].id.clone()).collect();
    ids.sort();
    ids
}
