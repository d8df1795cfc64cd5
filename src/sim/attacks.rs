//! Labelled attacks injected into simulated traffic.

use super::profiles::AgentSpec;
use super::rng::SimRng;
use super::SimConfig;
use crate::model::time::DAY_MS;

/// Systems no simulated agent uses in its normal work.
const SENSITIVE: &[&str] = &[
    "hr.payroll",
    "finance.ledger",
    "iam.admin",
    "s3://secrets-vault",
    "prod.db.customers",
    "payments.api",
];

/// What an attack does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackKind {
    /// Data leaves: one huge transfer, or a burst of large ones.
    Exfiltration,
    /// The agent touches a sensitive system it has never used.
    FirstAccess,
    /// The agent calls one system in a tight loop.
    RunawayLoop,
}

impl AttackKind {
    /// Label name.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Exfiltration => "exfiltration",
            AttackKind::FirstAccess => "first_access",
            AttackKind::RunawayLoop => "runaway_loop",
        }
    }
}

/// One injected call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackCall {
    /// Event time.
    pub time_ms: i64,
    /// Action.
    pub action: String,
    /// System.
    pub system: String,
    /// Bytes in.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
}

/// An attack with its exact calls, planned before any traffic is generated so that the
/// labels are known up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAttack {
    /// Index of the victim agent.
    pub agent: usize,
    /// What happens.
    pub kind: AttackKind,
    /// The calls, in time order.
    pub calls: Vec<AttackCall>,
}

impl PlannedAttack {
    /// First call's time.
    pub fn start_ms(&self) -> i64 {
        self.calls.first().map_or(0, |c| c.time_ms)
    }

    /// Last call's time.
    pub fn end_ms(&self) -> i64 {
        self.calls.last().map_or(0, |c| c.time_ms)
    }
}

/// Plans about one attack of each kind per five agents, each on a distinct agent per
/// kind, at an active time of the victim after its first third of the simulation (so
/// that it has a baseline to deviate from). Needs at least four days of traffic.
pub(super) fn plan(agents: &[AgentSpec], config: &SimConfig, start_ms: i64) -> Vec<PlannedAttack> {
    if config.days < 4 || agents.is_empty() {
        return Vec::new();
    }
    let mut rng = SimRng::new(config.seed ^ 0xA77A_C4ED);
    let per_kind = (agents.len() / 5).max(1);
    let first_day = i64::from((config.days / 3).max(2));
    let last_day = i64::from(config.days) - 1;
    let mut attacks = Vec::new();
    for kind in [
        AttackKind::Exfiltration,
        AttackKind::FirstAccess,
        AttackKind::RunawayLoop,
    ] {
        let mut victims: Vec<usize> = (0..agents.len()).collect();
        for _ in 0..per_kind.min(agents.len()) {
            let pick = rng.below(victims.len() as u64) as usize;
            let agent = &agents[victims.swap_remove(pick)];
            let Some(at) =
                active_minute(agent, config.seed, start_ms, first_day, last_day, &mut rng)
            else {
                continue;
            };
            attacks.push(PlannedAttack {
                agent: agent.index,
                kind,
                calls: calls(kind, agent, at, &mut rng),
            });
        }
    }
    attacks.sort_by_key(|a| (a.start_ms(), a.agent));
    attacks
}

/// A minute in which `agent` is normally active, between `first_day` and `last_day`.
fn active_minute(
    agent: &AgentSpec,
    seed: u64,
    start_ms: i64,
    first_day: i64,
    last_day: i64,
    rng: &mut SimRng,
) -> Option<i64> {
    let span = (last_day - first_day).max(1) as u64;
    for _ in 0..5_000 {
        let day = first_day + rng.below(span) as i64;
        let minute = rng.below(24 * 60 - 30) as i64;
        let at = start_ms + day * DAY_MS + minute * 60_000;
        if agent.rate_at(seed, start_ms, at) > 0.0
            && agent.rate_at(seed, start_ms, at + 20 * 60_000) > 0.0
        {
            return Some(at);
        }
    }
    None
}

fn calls(kind: AttackKind, agent: &AgentSpec, at: i64, rng: &mut SimRng) -> Vec<AttackCall> {
    let main = agent.systems[0].name.clone();
    let typical = agent.typical_bytes();
    let call =
        |time_ms: i64, action: &str, system: &str, bytes_in: u64, bytes_out: u64| AttackCall {
            time_ms,
            action: action.to_owned(),
            system: system.to_owned(),
            bytes_in,
            bytes_out,
        };
    match kind {
        AttackKind::Exfiltration if rng.chance(0.5) => {
            let bytes = (typical * rng.uniform(300.0, 1500.0)).max(2e8) as u64;
            vec![call(at + 17_000, "export", &main, 0, bytes)]
        }
        AttackKind::Exfiltration => (0..25)
            .map(|i| {
                let bytes = (typical * rng.uniform(40.0, 80.0)).max(5e5) as u64;
                call(at + i * 12_000, "read", &main, bytes, 0)
            })
            .collect(),
        AttackKind::FirstAccess => {
            let system = SENSITIVE[rng.below(SENSITIVE.len() as u64) as usize];
            let count = 3 + rng.below(6) as i64;
            (0..count)
                .map(|i| {
                    let bytes = rng.log_normal(typical, agent.bytes_sigma) as u64;
                    call(at + i * 600_000 / count, "read", system, bytes, 0)
                })
                .collect()
        }
        AttackKind::RunawayLoop => {
            let per_minute = (agent.per_minute * 30.0).max(40.0) as i64;
            let action = agent.pick_action(rng);
            (0..15 * per_minute)
                .map(|i| {
                    let bytes = rng.log_normal(typical, agent.bytes_sigma) as u64;
                    call(at + i * 60_000 / per_minute, action, &main, bytes, 0)
                })
                .collect()
        }
    }
}
