//! Flat load for throughput measurements: many agents, no schedules, no attacks.
//!
//! The realistic simulator spends most of its time on idle agents at night; a
//! throughput benchmark wants every agent busy from the first event, so this generator
//! picks an agent uniformly per event and advances time evenly across one day.

use super::profiles::CORE_SYSTEMS;
use super::rng::SimRng;
use crate::model::time::{format_rfc3339, parse_rfc3339, DAY_MS};
use crate::model::{AgentEventV1, EventTime, SCHEMA_VERSION};

const ACTIONS: &[&str] = &["read", "write", "search", "tool_call:send_email"];

/// `events` events over `agents` agents, deterministic for `seed`.
pub fn flat_load(agents: usize, events: u64, seed: u64) -> impl Iterator<Item = AgentEventV1> {
    let mut rng = SimRng::new(seed);
    let start = parse_rfc3339(super::SIM_START).unwrap_or_default();
    let step = (DAY_MS as f64 / events.max(1) as f64).max(0.001);
    let agents = agents.max(1) as u64;
    (0..events).map(move |n| {
        let agent = rng.below(agents);
        // The first ten core systems: plain names, as most agents use.
        let system = CORE_SYSTEMS[((agent + rng.below(3)) % 10) as usize];
        let action = ACTIONS[rng.below(ACTIONS.len() as u64) as usize];
        let bytes = rng.log_normal(2e4 * (1.0 + (agent % 7) as f64), 0.8) as u64;
        AgentEventV1 {
            schema_version: Some(SCHEMA_VERSION),
            event_id: format!("load-{seed:x}-{n:010}"),
            time: EventTime::Rfc3339(format_rfc3339(start + (n as f64 * step) as i64)),
            agent_id: format!("agent-load-{agent:06}"),
            action: action.to_owned(),
            system: system.to_owned(),
            owner: Some(format!("owner{:02}@example.com", agent % 37)),
            credential_id: Some(format!("cred-load-{agent:06}")),
            session_id: None,
            resource: None,
            bytes_in: bytes,
            bytes_out: 0,
            outcome: None,
            approval_id: None,
            attributes: Default::default(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_agents_evenly_and_deterministically() {
        let events: Vec<_> = flat_load(100, 20_000, 5).collect();
        let agents: std::collections::BTreeSet<_> =
            events.iter().map(|e| e.agent_id.clone()).collect();
        assert_eq!(agents.len(), 100);
        assert_eq!(events, flat_load(100, 20_000, 5).collect::<Vec<_>>());
    }
}
