//! The event stream: the planned fleet, changes and attacks turned into events, minute
//! by minute, in event-time order.

use std::collections::VecDeque;

use super::attacks;
use super::dynamics::{outage_outcome, MAX_RETRIES, RETRY_CHANCE, ROLLOUT_SYSTEM};
use super::moderate::SLOW_FACTOR;
use super::profiles::AgentSpec;
use super::rng::SimRng;
use super::Simulation;
use crate::model::time::{format_rfc3339, DAY_MS};
use crate::model::{AgentEventV1, EventTime, Outcome, SCHEMA_VERSION};

const MINUTE_MS: i64 = 60_000;

/// An event with the key it is ordered by: (time, agent index).
type Pending = (i64, usize, AgentEventV1);

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
    /// Retries that fall into a later minute than the call they repeat.
    deferred: Vec<Pending>,
    /// Per agent, the spans in which a slow exfiltration inflates its transfers.
    inflated: Vec<Vec<(i64, i64)>>,
}

#[derive(Clone, Copy)]
struct Call<'s> {
    time_ms: i64,
    agent_id: &'s str,
    action: &'s str,
    system: &'s str,
    bytes_in: u64,
    bytes_out: u64,
    outcome: Outcome,
    credential: Option<&'s str>,
    approval: Option<&'s str>,
}

impl<'a> EventStream<'a> {
    pub(super) fn new(sim: &'a Simulation) -> Self {
        let mut injected: Vec<(i64, usize, usize)> = sim
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
        let mut inflated = vec![Vec::new(); sim.agents.len()];
        for attack in &sim.attacks {
            if let Some(span) = attack.inflated {
                inflated[attack.agent].push(span);
            }
        }
        EventStream {
            sim,
            rng: SimRng::new(sim.config.seed ^ 0xE7E7_E7E7),
            minute_ms: sim.start_ms,
            buffer: VecDeque::new(),
            next_id: 0,
            explored: vec![0; sim.agents.len()],
            injected,
            next_injected: 0,
            deferred: Vec::new(),
            inflated,
        }
    }

    /// How much a slow exfiltration inflates `agent`'s transfers at `time_ms`.
    fn inflation(&self, agent: usize, time_ms: i64) -> f64 {
        let inside = self.inflated[agent]
            .iter()
            .any(|(start, end)| (*start..=*end).contains(&time_ms));
        if inside {
            SLOW_FACTOR
        } else {
            1.0
        }
    }

    fn fill_minute(&mut self) {
        let sim = self.sim;
        let minute = self.minute_ms;
        let next_minute = minute + MINUTE_MS;
        let mut pending: Vec<Pending> = Vec::new();
        if !self.deferred.is_empty() {
            let (due, later) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(|(time, _, _)| *time < next_minute);
            pending = due;
            self.deferred = later;
        }
        for agent in &sim.agents {
            let lambda = sim.dynamics.rate_at(agent, minute);
            let calls = self.rng.poisson(lambda);
            for _ in 0..calls {
                let time_ms = minute + self.rng.below(MINUTE_MS as u64) as i64;
                let action = agent.pick_action(&mut self.rng);
                let explore = agent.explore > 0.0 && self.rng.chance(agent.explore);
                let revisit = !explore
                    && self.explored[agent.index] > 0
                    && agent.explore > 0.0
                    && self.rng.chance(0.3);
                let adopted = sim.dynamics.adoption(agent, time_ms);
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
                } else if let Some(adoption) = adopted.filter(|a| self.rng.chance(a.share)) {
                    (ROLLOUT_SYSTEM.to_owned(), adoption.median_bytes)
                } else {
                    let spec = agent.pick_system(&mut self.rng);
                    (spec.name.clone(), spec.median_bytes)
                };
                let scale = sim.dynamics.bytes_factor(agent, time_ms)
                    * self.inflation(agent.index, time_ms);
                let bytes = self
                    .rng
                    .log_normal(median * scale, agent.bytes_sigma)
                    .round() as u64;
                let (bytes_in, bytes_out) = if action == "write" {
                    (0, bytes)
                } else {
                    (bytes, 0)
                };
                let roll = self.rng.unit();
                let down = sim.dynamics.is_down(&system, time_ms);
                let outcome = if down {
                    outage_outcome(roll)
                } else if roll < 0.003 {
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
                    approval: None,
                };
                let event = self.event(agent, &call, false);
                pending.push((time_ms, agent.index, event));
                if down {
                    self.retry(agent, call, next_minute, &mut pending);
                }
            }
        }
        while let Some(&(time_ms, a, c)) = self.injected.get(self.next_injected) {
            if time_ms >= next_minute {
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
                approval: spec.approval.as_deref(),
            };
            let event = self.event(agent, &call, true);
            pending.push((time_ms, agent.index, event));
        }
        pending.sort_by_key(|(time, agent, _)| (*time, *agent));
        self.buffer.extend(pending.into_iter().map(|(_, _, e)| e));
    }

    /// The retries of `failed`, a call to a system that is down: each follows the last
    /// after 5-40 s with [`RETRY_CHANCE`], up to [`MAX_RETRIES`], and fails too while the
    /// outage lasts. Retries after `next_minute` wait in `deferred`, to keep time order.
    fn retry(
        &mut self,
        agent: &AgentSpec,
        failed: Call<'_>,
        next_minute: i64,
        pending: &mut Vec<Pending>,
    ) {
        let mut time_ms = failed.time_ms;
        for _ in 0..MAX_RETRIES {
            if !self.rng.chance(RETRY_CHANCE) {
                break;
            }
            time_ms += self.rng.uniform(5_000.0, 40_000.0) as i64;
            let down = self.sim.dynamics.is_down(failed.system, time_ms);
            let outcome = if down {
                outage_outcome(self.rng.unit())
            } else {
                Outcome::Success
            };
            let call = Call {
                time_ms,
                outcome,
                ..failed
            };
            let event = self.event(agent, &call, false);
            let entry = (time_ms, agent.index, event);
            if time_ms < next_minute {
                pending.push(entry);
            } else {
                self.deferred.push(entry);
            }
            if !down {
                break;
            }
        }
    }

    /// An event for `call`. Benign high-risk actions (nightly deletes) carry a standing
    /// change approval, as they would in a fleet that follows its own policy; the
    /// injected ones (`injected`) carry only the one an approval attack gives them.
    fn event(&mut self, agent: &AgentSpec, call: &Call<'_>, injected: bool) -> AgentEventV1 {
        self.next_id += 1;
        let day = (call.time_ms - self.sim.start_ms).div_euclid(DAY_MS);
        let approval_id = if injected {
            call.approval.map(str::to_owned)
        } else {
            (call.action == "delete").then(|| format!("chg-{:04}-d{day}", agent.index))
        };
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
