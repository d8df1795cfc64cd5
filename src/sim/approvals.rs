//! Approvals in simulated traffic (`simulate --approvals`): the records a human approval
//! system would have written for the fleet's legitimate high-risk actions, and labelled
//! attacks that abuse approvals.
//!
//! Benign deletes already carry a standing change approval (`chg-<agent>-d<day>`, see
//! the event stream). Without an approval source any id passes, so those ids were never
//! backed by a record. To let `replay --approvals` verify them, the records are made
//! from what the traffic actually used ([`ApprovalTally`]): one per id, for that agent,
//! the systems it deleted on, valid for that UTC day, with `max_uses` exactly the number
//! of uses. So a benign delete can never break a rule, and any extra use is one too many.
//!
//! The attacks ([`ATTACKS`]) each delete once with an approval that must not count:
//! an id no record has (forged), one granted to another agent (foreign), one that
//! lapsed (expired), and a single-use one used a second time (reused). They are planned
//! with their own random stream after every other attack, so adding them changes
//! nothing else the simulation does.

use std::collections::{BTreeMap, BTreeSet};

use super::attacks::{active_minute, AttackCall, AttackKind, PlannedAttack};
use super::dynamics::Dynamics;
use super::profiles::AgentSpec;
use super::rng::SimRng;
use super::SimConfig;
use crate::approvals::AgentApprovalV1;
use crate::model::time::{format_rfc3339, parse_rfc3339, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::model::{AgentEventV1, EventTime};

/// Who approves the simulated fleet's changes.
pub const APPROVER: &str = "change-board@example.com";

/// The approval attacks, one kind per way an approval can fail to count.
pub(super) const ATTACKS: [AttackKind; 4] = [
    AttackKind::ForgedApproval,
    AttackKind::ForeignApproval,
    AttackKind::ExpiredApproval,
    AttackKind::ReusedApproval,
];

/// The approval attacks and the records they need.
#[derive(Debug, Clone, Default)]
pub(super) struct ApprovalPlan {
    /// The attacks.
    pub attacks: Vec<PlannedAttack>,
    /// The records the foreign, expired and reused attacks name (forged ones name none).
    pub records: Vec<AgentApprovalV1>,
}

/// Plans about one attack of each kind per ten agents (at least one), each on its own
/// victim, preferring agents no other attack touches (`taken`) so that no other
/// `high_risk_action` finding on the same agent can share a cooldown with it.
pub(super) fn plan(
    agents: &[AgentSpec],
    config: &SimConfig,
    dynamics: &Dynamics,
    start_ms: i64,
    taken: &BTreeSet<usize>,
) -> ApprovalPlan {
    let mut plan = ApprovalPlan::default();
    if config.days < 4 || agents.len() < 2 {
        return plan;
    }
    let mut rng = SimRng::new(config.seed ^ 0xA9_9A0E);
    let per_kind = (agents.len() / 10).max(1);
    let first_day = i64::from((config.days / 3).max(2));
    let last_day = i64::from(config.days) - 1;
    let (mut free, mut busy): (Vec<usize>, Vec<usize>) =
        (0..agents.len()).partition(|i| !taken.contains(i));
    for kind in ATTACKS {
        for _ in 0..per_kind {
            let pool = if free.is_empty() {
                &mut busy
            } else {
                &mut free
            };
            if pool.is_empty() {
                return plan;
            }
            let pick = rng.below(pool.len() as u64) as usize;
            let agent = &agents[pool.swap_remove(pick)];
            let joined = dynamics.first_day(agent);
            let first = if joined > 0 {
                first_day.max(joined + 4)
            } else {
                first_day
            };
            let Some(at) = active_minute(agent, dynamics, start_ms, (first, last_day), &mut rng)
            else {
                continue;
            };
            let offset = 1 + rng.below(agents.len() as u64 - 1) as usize;
            let other = &agents[(agent.index + offset) % agents.len()];
            let id = format!("apr-{:04}-{:06x}", agent.index, rng.below(1 << 24));
            let (record, calls) = attack(kind, agent, other, &id, at);
            plan.records.extend(record);
            plan.attacks.push(PlannedAttack {
                agent: agent.index,
                kind,
                calls,
                impostor: None,
                inflated: None,
            });
        }
    }
    plan
}

/// The record (if any) and the calls of one approval attack by `agent` at `at`.
fn attack(
    kind: AttackKind,
    agent: &AgentSpec,
    other: &AgentSpec,
    id: &str,
    at: i64,
) -> (Option<AgentApprovalV1>, Vec<AttackCall>) {
    let system = &agent.systems[0].name;
    let delete = |time_ms: i64| {
        let mut call = AttackCall::new(time_ms, "delete", system, 0, 0);
        call.approval = Some(id.to_owned());
        call
    };
    let record = |holder: &AgentSpec, issued: i64, expires: i64| AgentApprovalV1 {
        schema_version: None,
        approval_id: id.to_owned(),
        agent_id: holder.id.clone(),
        actions: vec!["delete".into()],
        systems: Some(vec![system.clone()]),
        approved_by: APPROVER.into(),
        issued_at: format_rfc3339(issued),
        expires_at: format_rfc3339(expires),
        max_uses: Some(1),
        request_id: None,
        signature: None,
    };
    let first = at + 5_000;
    match kind {
        AttackKind::ForgedApproval => (None, vec![delete(first)]),
        AttackKind::ForeignApproval => (
            Some(record(other, at - 30 * MINUTE_MS, at + 2 * HOUR_MS)),
            vec![delete(first)],
        ),
        AttackKind::ExpiredApproval => (
            Some(record(agent, at - DAY_MS - 2 * HOUR_MS, at - 2 * HOUR_MS)),
            vec![delete(first)],
        ),
        // The first use is legitimate; the replay a quarter of an hour later is not.
        _ => (
            Some(record(agent, at - 10 * MINUTE_MS, at + 2 * HOUR_MS)),
            vec![delete(first), delete(first + 15 * MINUTE_MS)],
        ),
    }
}

/// The approvals the simulated traffic used, counted while its events are written.
#[derive(Debug, Clone, Default)]
pub struct ApprovalTally {
    used: BTreeMap<String, Used>,
}

#[derive(Debug, Clone)]
struct Used {
    agent_id: String,
    systems: BTreeSet<String>,
    first_ms: i64,
    uses: u32,
}

impl ApprovalTally {
    /// Counts `event`'s approval, if it carries one.
    pub fn observe(&mut self, event: &AgentEventV1) {
        let Some(id) = &event.approval_id else {
            return;
        };
        let time_ms = match &event.time {
            EventTime::Rfc3339(text) => parse_rfc3339(text).unwrap_or_default(),
            EventTime::EpochMillis(ms) => *ms,
        };
        let used = self.used.entry(id.clone()).or_insert_with(|| Used {
            agent_id: event.agent_id.clone(),
            systems: BTreeSet::new(),
            first_ms: time_ms,
            uses: 0,
        });
        used.systems.insert(event.system.clone());
        used.uses += 1;
    }

    /// Records for every counted approval except those in `excluded` (the attacks'):
    /// each covers deletes by its agent on the systems it used, for the UTC day of its
    /// first use, exactly as many times as it was used.
    pub(super) fn records(&self, excluded: &BTreeSet<&str>) -> Vec<AgentApprovalV1> {
        self.used
            .iter()
            .filter(|(id, _)| !excluded.contains(id.as_str()))
            .map(|(id, used)| {
                let day = used.first_ms - used.first_ms.rem_euclid(DAY_MS);
                AgentApprovalV1 {
                    schema_version: None,
                    approval_id: id.clone(),
                    agent_id: used.agent_id.clone(),
                    actions: vec!["delete".into()],
                    systems: Some(used.systems.iter().cloned().collect()),
                    approved_by: APPROVER.into(),
                    issued_at: format_rfc3339(day),
                    expires_at: format_rfc3339(day + DAY_MS),
                    max_uses: Some(used.uses),
                    request_id: None,
                    signature: None,
                }
            })
            .collect()
    }
}
