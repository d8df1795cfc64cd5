//! Moderate attacks: the ones real fleets see and strong-attack tuning misses.
//!
//! The strong attacks move hundreds of times an agent's typical data or loop at thirty
//! times its pace; any baseline catches them. These stay within a small multiple of the
//! agent's own behaviour (sizes and pace as they are at the time, after any job change),
//! so only a detector that knows the agent well separates them from a busy day. Each is
//! injected on its own victim (none shared with another moderate or strong attack), only
//! after the victim's first four days, so there is a baseline to deviate from.

use std::collections::BTreeSet;

use super::attacks::{active_minute, AttackCall, AttackKind, PlannedAttack};
use super::dynamics::Dynamics;
use super::profiles::AgentSpec;
use super::rng::SimRng;
use super::SimConfig;
use crate::model::time::DAY_MS;

/// The moderate attacks, in planning order.
pub(super) const MODERATE: [AttackKind; 4] = [
    AttackKind::ModerateExfiltration,
    AttackKind::SlowExfiltration,
    AttackKind::ModerateRunaway,
    AttackKind::PeerSystemAccess,
];

/// How much larger every transfer is during a slow exfiltration.
pub(super) const SLOW_FACTOR: f64 = 3.0;
/// A moderate runaway's pace, as a multiple of the agent's own.
pub(super) const RUNAWAY_FACTOR: f64 = 5.0;
/// Agents calling less often than this per minute count as slow; half the moderate
/// runaways hit one, because a fixed-size burst hides best on a slow agent's scale.
pub(super) const SLOW_PACE: f64 = 0.4;
const MINUTE_MS: i64 = 60_000;
const TEN_MINUTES: i64 = 10 * MINUTE_MS;
/// Days of the victim's own traffic before any attack.
const BASELINE_DAYS: i64 = 4;

/// Plans one attack of each moderate kind per ten agents, on distinct victims not in
/// `taken` (the strong attacks' victims). Needs six days of traffic.
pub(super) fn plan(
    agents: &[AgentSpec],
    config: &SimConfig,
    dynamics: &Dynamics,
    start_ms: i64,
    taken: &BTreeSet<usize>,
) -> Vec<PlannedAttack> {
    if config.days < 6 || agents.is_empty() {
        return Vec::new();
    }
    let mut rng = SimRng::new(config.seed ^ 0x40DE_2A7E_5EED);
    let per_kind = (agents.len() / 10).max(1);
    let last_day = i64::from(config.days) - 1;
    let mut pool: Vec<usize> = (0..agents.len()).filter(|i| !taken.contains(i)).collect();
    let mut attacks = Vec::new();
    for kind in MODERATE {
        let mut planned = 0;
        for _ in 0..4 * agents.len() + 20 {
            if planned == per_kind || pool.is_empty() {
                break;
            }
            let want_slow = kind == AttackKind::ModerateRunaway && planned < per_kind.div_ceil(2);
            let slow: Vec<usize> = (0..pool.len())
                .filter(|&p| agents[pool[p]].per_minute < SLOW_PACE)
                .collect();
            let pick = if want_slow && !slow.is_empty() {
                slow[rng.below(slow.len() as u64) as usize]
            } else {
                rng.below(pool.len() as u64) as usize
            };
            let agent = &agents[pool[pick]];
            let span = (dynamics.first_day(agent) + BASELINE_DAYS, last_day);
            let planner = Planner {
                agent,
                dynamics,
                start_ms,
            };
            let attack = match kind {
                AttackKind::ModerateExfiltration => planner.exfiltration(span, &mut rng),
                AttackKind::SlowExfiltration => planner.slow_exfiltration(span, &mut rng),
                AttackKind::ModerateRunaway => planner.runaway(span, &mut rng),
                _ => planner.peer_access(agents, span, &mut rng),
            };
            if let Some(attack) = attack {
                pool.swap_remove(pick);
                attacks.push(attack);
                planned += 1;
            }
        }
    }
    attacks.sort_by_key(|a| (a.start_ms(), a.agent));
    attacks
}

struct Planner<'a> {
    agent: &'a AgentSpec,
    dynamics: &'a Dynamics,
    start_ms: i64,
}

impl Planner<'_> {
    fn attack(&self, kind: AttackKind, calls: Vec<AttackCall>) -> PlannedAttack {
        PlannedAttack {
            agent: self.agent.index,
            kind,
            calls,
            impostor: None,
            inflated: None,
        }
    }

    /// The agent's typical transfer size at `at` (after any job change).
    fn typical(&self, at: i64) -> f64 {
        self.agent.typical_bytes() * self.dynamics.bytes_factor(self.agent, at)
    }

    fn exfiltration(&self, span: (i64, i64), rng: &mut SimRng) -> Option<PlannedAttack> {
        let at = active_minute(self.agent, self.dynamics, self.start_ms, span, rng)?;
        let count = 15 + rng.below(26) as i64;
        let slot = TEN_MINUTES / count;
        let typical = self.typical(at);
        let calls = (0..count)
            .map(|i| {
                let time = at + i * slot + rng.below(slot as u64) as i64;
                let system = self.agent.pick_system(rng).name.clone();
                let bytes = (typical * rng.uniform(8.0, 20.0)) as u64;
                AttackCall::new(time, "read", &system, bytes, 0)
            })
            .collect();
        Some(self.attack(AttackKind::ModerateExfiltration, calls))
    }

    fn slow_exfiltration(&self, span: (i64, i64), rng: &mut SimRng) -> Option<PlannedAttack> {
        let (first_day, last_day) = span;
        if first_day > last_day {
            return None;
        }
        let minutes = 120 + rng.below(4 * 60 + 1) as i64;
        let days = (last_day - first_day).max(1) as u64;
        for _ in 0..2_000 {
            let day = first_day + rng.below(days) as i64;
            let minute = rng.below((24 * 60 - minutes) as u64) as i64;
            let at = self.start_ms + day * DAY_MS + minute * MINUTE_MS;
            let end = at + minutes * MINUTE_MS;
            let busy = (0..=minutes / 10)
                .all(|k| self.dynamics.rate_at(self.agent, at + k * TEN_MINUTES) > 0.0)
                && self.dynamics.rate_at(self.agent, end - MINUTE_MS) > 0.0;
            if busy {
                let mut attack = self.attack(AttackKind::SlowExfiltration, Vec::new());
                attack.inflated = Some((at, end));
                return Some(attack);
            }
        }
        None
    }

    fn runaway(&self, span: (i64, i64), rng: &mut SimRng) -> Option<PlannedAttack> {
        let at = active_minute(self.agent, self.dynamics, self.start_ms, span, rng)?;
        let pace: f64 = (0..10)
            .map(|m| self.dynamics.rate_at(self.agent, at + m * MINUTE_MS))
            .sum::<f64>()
            / 10.0;
        // The agent's own calls go on; the loop adds the rest of the five-fold pace.
        let extra = ((RUNAWAY_FACTOR - 1.0) * pace * 10.0).round().max(1.0) as i64;
        let action = match self.agent.pick_action(rng) {
            "delete" => "read",
            other => other,
        };
        let system = self.agent.pick_system(rng);
        let median = system.median_bytes * self.dynamics.bytes_factor(self.agent, at);
        let calls = (0..extra)
            .map(|i| {
                let bytes = rng.log_normal(median, self.agent.bytes_sigma) as u64;
                let (bytes_in, bytes_out) = if action == "write" {
                    (0, bytes)
                } else {
                    (bytes, 0)
                };
                let time = at + i * TEN_MINUTES / extra;
                AttackCall::new(time, action, &system.name, bytes_in, bytes_out)
            })
            .collect();
        Some(self.attack(AttackKind::ModerateRunaway, calls))
    }

    fn peer_access(
        &self,
        agents: &[AgentSpec],
        span: (i64, i64),
        rng: &mut SimRng,
    ) -> Option<PlannedAttack> {
        let own: BTreeSet<&str> = self.agent.systems.iter().map(|s| s.name.as_str()).collect();
        let peers: Vec<&str> = agents
            .iter()
            .flat_map(|a| a.systems.iter().map(|s| s.name.as_str()))
            .filter(|s| !own.contains(s))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let system = *peers.get(rng.below(peers.len().max(1) as u64) as usize)?;
        let at = active_minute(self.agent, self.dynamics, self.start_ms, span, rng)?;
        let count = 3 + rng.below(6) as i64;
        let typical = self.typical(at);
        let calls = (0..count)
            .map(|i| {
                let bytes = rng.log_normal(typical, self.agent.bytes_sigma) as u64;
                AttackCall::new(at + i * TEN_MINUTES / count, "read", system, bytes, 0)
            })
            .collect();
        Some(self.attack(AttackKind::PeerSystemAccess, calls))
    }
}
