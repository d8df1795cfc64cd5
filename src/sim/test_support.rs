//! Helpers for the simulator's traffic tests.

use std::collections::{BTreeMap, BTreeSet};

use super::{Scenario, SimConfig, Simulation};
use crate::model::time::{parse_rfc3339, DAY_MS, HOUR_MS};
use crate::model::{AgentEventV1, EventTime};

/// A simulation of `scenario` (which must parse).
pub fn simulation(agents: usize, days: u32, seed: u64, scenario: &str) -> Simulation {
    Simulation::new(SimConfig {
        agents,
        days,
        seed,
        attacks: true,
        scenario: scenario.parse::<Scenario>().unwrap(),
    })
}

/// An event's time in epoch milliseconds.
pub fn time_of(event: &AgentEventV1) -> i64 {
    match &event.time {
        EventTime::Rfc3339(text) => parse_rfc3339(text).unwrap(),
        EventTime::EpochMillis(ms) => *ms,
    }
}

/// Epoch milliseconds of an RFC 3339 text.
pub fn ms(text: &str) -> i64 {
    parse_rfc3339(text).unwrap()
}

/// All events, grouped by agent, each with its time.
pub fn by_agent(sim: &Simulation) -> BTreeMap<String, Vec<(i64, AgentEventV1)>> {
    let mut agents: BTreeMap<String, Vec<(i64, AgentEventV1)>> = BTreeMap::new();
    for event in sim.events() {
        agents
            .entry(event.agent_id.clone())
            .or_default()
            .push((time_of(&event), event));
    }
    agents
}

/// Bytes an event moved.
pub fn bytes(event: &AgentEventV1) -> u64 {
    event.bytes_in + event.bytes_out
}

/// The median of `values` (0 for none).
pub fn median(mut values: Vec<u64>) -> f64 {
    values.sort_unstable();
    values.get(values.len() / 2).map_or(0.0, |v| *v as f64)
}

/// Hours of the day (UTC) in which the events fall.
pub fn hours_of_day<'a>(
    sim: &Simulation,
    events: impl Iterator<Item = &'a (i64, AgentEventV1)>,
) -> BTreeSet<i64> {
    events
        .map(|(t, _)| (t - sim.start_ms()).rem_euclid(DAY_MS) / HOUR_MS)
        .collect()
}
