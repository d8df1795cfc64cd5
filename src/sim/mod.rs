//! Realistic synthetic agent traffic with labelled attacks.
//!
//! A fleet of agents with distinct profiles (office-hours assistants, nightly batch
//! jobs, always-on bots, exploratory researchers), each with its own systems, transfer
//! sizes, pace and schedule, plus injected attacks whose exact times are written to a
//! labels file: exfiltration (one huge transfer or a burst), first access to a
//! sensitive system, and runaway loops. Deterministic for a seed, on every platform.

mod attacks;
mod load;
mod profiles;
mod registry;
mod rng;

pub use attacks::{AttackKind, PlannedAttack};
pub use load::flat_load;
pub use profiles::{AgentSpec, Profile};
pub use registry::fleet_registry;
pub use rng::SimRng;

use std::collections::VecDeque;

use crate::eval::Incident;
use crate::model::time::{format_rfc3339, parse_rfc3339, DAY_MS};
use crate::model::{AgentEventV1, EventTime, Outcome, SCHEMA_VERSION};

/// The Monday on which every simulation starts (event time; fixed for determinism).
pub const SIM_START: &str = "2026-01-05T00:00:00Z";
const MINUTE_MS: i64 = 60_000;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Fleet size.
    pub agents: usize,
    /// Days of traffic.
    pub days: u32,
    /// Seed; the same seed gives the same events and labels.
    pub seed: u64,
    /// Inject labelled attacks.
    pub attacks: bool,
}

/// A planned simulation: the fleet and its attacks.
#[derive(Debug, Clone)]
pub struct Simulation {
    config: SimConfig,
    start_ms: i64,
    agents: Vec<AgentSpec>,
    attacks: Vec<PlannedAttack>,
}

impl Simulation {
    /// Plans the fleet and the behavioural attacks for `config`.
    pub fn new(config: SimConfig) -> Self {
        Self::plan(config, &attacks::BEHAVIOURAL)
    }

    /// Like [`Simulation::new`], plus attacks on identity and policy (scope violations,
    /// unapproved high-risk actions, credential misuse, off-hours work, an unregistered
    /// agent, denial bursts), which only a registry ([`Simulation::registry`]) lets the
    /// engine recognise.
    pub fn with_policy(config: SimConfig) -> Self {
        let kinds: Vec<AttackKind> = attacks::BEHAVIOURAL
            .iter()
            .chain(attacks::POLICY.iter())
            .copied()
            .collect();
        Self::plan(config, &kinds)
    }

    fn plan(config: SimConfig, kinds: &[AttackKind]) -> Self {
        let start_ms = parse_rfc3339(SIM_START).unwrap_or_default();
        let mut rng = SimRng::new(config.seed);
        let profiles = [
            (Profile::OfficeAssistant, 0.40),
            (Profile::NightlyBatch, 0.15),
            (Profile::AlwaysOnBot, 0.25),
            (Profile::Researcher, 0.20),
        ];
        let weights: Vec<f64> = profiles.iter().map(|(_, w)| *w).collect();
        let agents: Vec<AgentSpec> = (0..config.agents)
            .map(|index| {
                let profile = profiles[rng.weighted(&weights)].0;
                AgentSpec::generate(index, profile, &mut rng)
            })
            .collect();
        let attacks = if config.attacks {
            attacks::plan(&agents, &config, start_ms, kinds)
        } else {
            Vec::new()
        };
        Simulation {
            config,
            start_ms,
            agents,
            attacks,
        }
    }

    /// The simulated fleet.
    pub fn agents(&self) -> &[AgentSpec] {
        &self.agents
    }

    /// The planned attacks.
    pub fn attacks(&self) -> &[PlannedAttack] {
        &self.attacks
    }

    /// Event time of the first simulated minute.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Event time just after the last simulated minute.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.config.days) * DAY_MS
    }

    /// The labelled incidents, as `replay --labels` reads them.
    pub fn labels(&self) -> Vec<Incident> {
        self.attacks
            .iter()
            .map(|attack| Incident {
                agent_id: attack
                    .impostor
                    .clone()
                    .unwrap_or_else(|| self.agents[attack.agent].id.clone()),
                kind: attack.kind.name().to_owned(),
                start: format_rfc3339(attack.start_ms()),
                end: format_rfc3339(attack.end_ms()),
                detector: attack.kind.detector().map(str::to_owned),
            })
            .collect()
    }

    /// The fleet's registry records: owners, boundaries, weekly credentials and, for
    /// office assistants, declared working hours.
    pub fn registry(&self) -> Vec<crate::identity::AgentRecordV1> {
        fleet_registry(&self.agents, self.start_ms, self.config.days)
    }

    /// The events, in event-time order (minute by minute, across the whole fleet).
    pub fn events(&self) -> EventStream<'_> {
        let mut injected: Vec<(i64, usize, usize)> = self
            .attacks
            .iter()
            .enumerate()
            .flat_map(|(a, attack)| {
                attack
                    .calls
                    .iter()
                    .enumerate()
                    .map(move |(c, call)| (call.time_ms, a, c))
            })
            .collect();
        injected.sort_unstable();
        EventStream {
            sim: self,
            rng: SimRng::new(self.config.seed ^ 0xE7E7_E7E7),
            minute_ms: self.start_ms,
            buffer: VecDeque::new(),
            next_id: 0,
            explored: vec![0; self.agents.len()],
            injected,
            next_injected: 0,
        }
    }
}

/// Iterator over simulated events.
pub struct EventStream<'a> {
    sim: &'a Simulation,
    rng: SimRng,
    minute_ms: i64,
    buffer: VecDeque<AgentEventV1>,
    next_id: u64,
    explored: Vec<u32>,
    injected: Vec<(i64, usize, usize)>,
    next_injected: usize,
}

struct Call<'s> {
    time_ms: i64,
    agent_id: &'s str,
    action: &'s str,
    system: &'s str,
    bytes_in: u64,
    bytes_out: u64,
    outcome: Outcome,
    credential: Option<&'s str>,
}

impl EventStream<'_> {
    fn fill_minute(&mut self) {
        let sim = self.sim;
        let minute = self.minute_ms;
        let mut pending: Vec<(i64, usize, AgentEventV1)> = Vec::new();
        for agent in &sim.agents {
            let lambda = agent.rate_at(sim.config.seed, sim.start_ms, minute);
            let calls = self.rng.poisson(lambda);
            for _ in 0..calls {
                let time_ms = minute + self.rng.below(MINUTE_MS as u64) as i64;
                let action = agent.pick_action(&mut self.rng);
                let explore = agent.explore > 0.0 && self.rng.chance(agent.explore);
                let revisit = !explore
                    && self.explored[agent.index] > 0
                    && agent.explore > 0.0
                    && self.rng.chance(0.3);
                let (system, median) = if explore || revisit {
                    let k = if explore {
                        self.explored[agent.index] += 1;
                        self.explored[agent.index]
                    } else {
                        1 + self.rng.below(u64::from(self.explored[agent.index])) as u32
                    };
                    (
                        format!("source-{k:03}.r{}", agent.index),
                        agent.typical_bytes(),
                    )
                } else {
                    let spec = agent.pick_system(&mut self.rng);
                    (spec.name.clone(), spec.median_bytes)
                };
                let bytes = self.rng.log_normal(median, agent.bytes_sigma).round() as u64;
                let (bytes_in, bytes_out) = if action == "write" {
                    (0, bytes)
                } else {
                    (bytes, 0)
                };
                let roll = self.rng.unit();
                let outcome = if roll < 0.003 {
                    Outcome::Denied
                } else if roll < 0.018 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                let call = Call {
                    time_ms,
                    agent_id: &agent.id,
                    action,
                    system: &system,
                    bytes_in,
                    bytes_out,
                    outcome,
                    credential: None,
                };
                let event = self.event(agent, &call, false);
                pending.push((time_ms, agent.index, event));
            }
        }
        while let Some(&(time_ms, a, c)) = self.injected.get(self.next_injected) {
            if time_ms >= minute + MINUTE_MS {
                break;
            }
            self.next_injected += 1;
            let attack = &sim.attacks[a];
            let spec = &attack.calls[c];
            let agent = &sim.agents[attack.agent];
            let call = Call {
                time_ms: spec.time_ms,
                agent_id: attack.impostor.as_deref().unwrap_or(&agent.id),
                action: &spec.action,
                system: &spec.system,
                bytes_in: spec.bytes_in,
                bytes_out: spec.bytes_out,
                outcome: spec.outcome,
                credential: spec.credential.as_deref(),
            };
            let event = self.event(agent, &call, true);
            pending.push((time_ms, agent.index, event));
        }
        pending.sort_by_key(|(time, agent, _)| (*time, *agent));
        self.buffer.extend(pending.into_iter().map(|(_, _, e)| e));
    }

    /// An event for `call`. Benign high-risk actions (nightly deletes) carry a standing
    /// change approval, as they would in a fleet that follows its own policy; the
    /// injected ones (`injected`) carry none.
    fn event(&mut self, agent: &AgentSpec, call: &Call<'_>, injected: bool) -> AgentEventV1 {
        self.next_id += 1;
        let day = (call.time_ms - self.sim.start_ms).div_euclid(DAY_MS);
        let approval_id = (!injected && call.action == "delete")
            .then(|| format!("chg-{:04}-d{day}", agent.index));
        AgentEventV1 {
            schema_version: Some(SCHEMA_VERSION),
            event_id: format!("evt-{:x}-{:09}", self.sim.config.seed, self.next_id),
            time: EventTime::Rfc3339(format_rfc3339(call.time_ms)),
            agent_id: call.agent_id.to_owned(),
            action: call.action.to_owned(),
            system: call.system.to_owned(),
            owner: Some(agent.owner.clone()),
            credential_id: Some(call.credential.map_or_else(
                || attacks::weekly_credential(agent, self.sim.start_ms, call.time_ms),
                str::to_owned,
            )),
            session_id: None,
            resource: None,
            bytes_in: call.bytes_in,
            bytes_out: call.bytes_out,
            outcome: (call.outcome != Outcome::Success).then_some(call.outcome),
            approval_id,
            attributes: Default::default(),
        }
    }
}

impl Iterator for EventStream<'_> {
    type Item = AgentEventV1;

    fn next(&mut self) -> Option<AgentEventV1> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(event);
            }
            if self.minute_ms >= self.sim.end_ms() {
                return None;
            }
            self.fill_minute();
            self.minute_ms += MINUTE_MS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SimConfig {
        SimConfig {
            agents: 12,
            days: 6,
            seed: 3,
            attacks: true,
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a: Vec<_> = Simulation::new(config()).events().take(2_000).collect();
        let b: Vec<_> = Simulation::new(config()).events().take(2_000).collect();
        assert_eq!(a, b);
        let other = SimConfig {
            seed: 4,
            ..config()
        };
        let c: Vec<_> = Simulation::new(other).events().take(2_000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_in_time_order_and_attacks_are_labelled() {
        let sim = Simulation::new(config());
        let mut last = 0;
        let mut injected = 0;
        let labels = sim.labels();
        assert!(!labels.is_empty());
        let attack_times: Vec<i64> = sim
            .attacks()
            .iter()
            .flat_map(|a| a.calls.iter().map(|c| c.time_ms))
            .collect();
        for event in sim.events() {
            let EventTime::Rfc3339(text) = &event.time else {
                panic!("rfc3339 expected")
            };
            let t = parse_rfc3339(text).unwrap();
            assert!(t >= last, "out of order");
            last = t;
            if attack_times.contains(&t) {
                injected += 1;
            }
        }
        assert!(injected >= attack_times.len());
    }

    #[test]
    fn office_assistants_sleep_at_night_and_batches_run_at_night() {
        let sim = Simulation::new(SimConfig {
            agents: 40,
            days: 2,
            seed: 9,
            attacks: false,
        });
        for agent in sim.agents() {
            let active: Vec<i64> = (0..24)
                .filter(|h| agent.rate_at(9, sim.start_ms(), sim.start_ms() + h * 3_600_000) > 0.0)
                .collect();
            match agent.profile {
                Profile::OfficeAssistant => assert!(active.len() == 10, "{active:?}"),
                Profile::NightlyBatch => assert_eq!(active.len(), 1),
                Profile::AlwaysOnBot => assert_eq!(active.len(), 24),
                Profile::Researcher => assert_eq!(active.len(), 10),
            }
        }
    }
}
