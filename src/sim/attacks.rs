//! Labelled attacks injected into simulated traffic.

use super::dynamics::Dynamics;
use super::profiles::{AgentSpec, Profile};
use super::rng::SimRng;
use super::SimConfig;
use crate::model::time::{DAY_MS, HOUR_MS};
use crate::model::Outcome;

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
    /// The agent touches a system outside its registry boundary.
    ScopeViolation,
    /// The agent deletes data without a human's approval.
    UnapprovedHighRisk,
    /// The agent uses a credential issued to another agent.
    CredentialReuse,
    /// The agent uses a credential that expired.
    ExpiredCredential,
    /// The agent works in an hour in which it has never worked.
    OffHours,
    /// An agent the registry does not know acts alongside the fleet.
    UnregisteredAgent,
    /// The agent collects a burst of denials, probing its boundaries.
    DeniedBurst,
    /// Data leaves in moderate pieces: 15-40 transfers, each 8-20 times the agent's
    /// typical size, within 10 minutes.
    ModerateExfiltration,
    /// Data leaves slowly: every transfer about 3 times the agent's typical size for
    /// 2-6 hours.
    SlowExfiltration,
    /// The agent calls at 5 times its own pace for 10 minutes (slow agents too).
    ModerateRunaway,
    /// The agent touches, for the first time, a system other agents of the fleet use
    /// (another team's), not a sensitive one.
    PeerSystemAccess,
    /// The agent deletes data with an `approval_id` no approval has (invented).
    ForgedApproval,
    /// The agent deletes data with an approval granted to another agent.
    ForeignApproval,
    /// The agent deletes data with an approval that had lapsed.
    ExpiredApproval,
    /// The agent uses a single-use approval a second time.
    ReusedApproval,
}

/// The behavioural attacks, injected in every simulation with attacks.
pub(super) const BEHAVIOURAL: [AttackKind; 3] = [
    AttackKind::Exfiltration,
    AttackKind::FirstAccess,
    AttackKind::RunawayLoop,
];

/// The attacks on identity and policy, injected when the simulation has a registry.
pub(super) const POLICY: [AttackKind; 7] = [
    AttackKind::ScopeViolation,
    AttackKind::UnapprovedHighRisk,
    AttackKind::CredentialReuse,
    AttackKind::ExpiredCredential,
    AttackKind::OffHours,
    AttackKind::UnregisteredAgent,
    AttackKind::DeniedBurst,
];

/// Systems outside every simulated agent's boundary, and not sensitive either.
const OUT_OF_SCOPE: &[&str] = &["vendor.portal", "marketing.assets", "legal.contracts"];

impl AttackKind {
    /// Label name.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Exfiltration => "exfiltration",
            AttackKind::FirstAccess => "first_access",
            AttackKind::RunawayLoop => "runaway_loop",
            AttackKind::ScopeViolation => "scope_violation",
            AttackKind::UnapprovedHighRisk => "unapproved_high_risk",
            AttackKind::CredentialReuse => "credential_reuse",
            AttackKind::ExpiredCredential => "expired_credential",
            AttackKind::OffHours => "off_hours",
            AttackKind::UnregisteredAgent => "unregistered_agent",
            AttackKind::DeniedBurst => "denied_burst",
            AttackKind::ModerateExfiltration => "moderate_exfiltration",
            AttackKind::SlowExfiltration => "slow_exfiltration",
            AttackKind::ModerateRunaway => "moderate_runaway",
            AttackKind::PeerSystemAccess => "peer_system_access",
            AttackKind::ForgedApproval => "forged_approval",
            AttackKind::ForeignApproval => "foreign_approval",
            AttackKind::ExpiredApproval => "expired_approval",
            AttackKind::ReusedApproval => "reused_approval",
        }
    }

    /// The detector instance that must catch it, when only one may count (policy and
    /// identity attacks are held to their own detector, not to whichever fires first).
    pub fn detector(self) -> Option<&'static str> {
        match self {
            AttackKind::Exfiltration
            | AttackKind::FirstAccess
            | AttackKind::RunawayLoop
            | AttackKind::ModerateExfiltration
            | AttackKind::SlowExfiltration
            | AttackKind::ModerateRunaway
            | AttackKind::PeerSystemAccess => None,
            AttackKind::ScopeViolation => Some("scope_violation"),
            AttackKind::UnapprovedHighRisk
            | AttackKind::ForgedApproval
            | AttackKind::ForeignApproval
            | AttackKind::ExpiredApproval
            | AttackKind::ReusedApproval => Some("high_risk_action"),
            AttackKind::CredentialReuse | AttackKind::ExpiredCredential => {
                Some("credential_misuse")
            }
            AttackKind::OffHours => Some("off_hours"),
            AttackKind::UnregisteredAgent => Some("unregistered_agent"),
            AttackKind::DeniedBurst => Some("denied_burst"),
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
    /// Result.
    pub outcome: Outcome,
    /// Credential used, when not the agent's current one.
    pub credential: Option<String>,
    /// The `approval_id` the call carries (injected calls carry none unless an
    /// approval attack gives one).
    pub approval: Option<String>,
}

impl AttackCall {
    /// A successful call with the agent's current credential.
    pub(super) fn new(
        time_ms: i64,
        action: &str,
        system: &str,
        bytes_in: u64,
        bytes_out: u64,
    ) -> Self {
        AttackCall {
            time_ms,
            action: action.to_owned(),
            system: system.to_owned(),
            bytes_in,
            bytes_out,
            outcome: Outcome::Success,
            credential: None,
            approval: None,
        }
    }
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
    /// The agent id the calls carry, when not the victim's (an impostor).
    pub impostor: Option<String>,
    /// A span (start, end) in which the victim's own transfers are inflated rather
    /// than calls added (slow exfiltration hides in the agent's normal traffic).
    pub inflated: Option<(i64, i64)>,
}

impl PlannedAttack {
    /// First call's time (or the start of the inflated span).
    pub fn start_ms(&self) -> i64 {
        let first = self.calls.first().map(|c| c.time_ms);
        first
            .into_iter()
            .chain(self.inflated.map(|(start, _)| start))
            .min()
            .unwrap_or(0)
    }

    /// Last call's time (or the end of the inflated span).
    pub fn end_ms(&self) -> i64 {
        let last = self.calls.last().map(|c| c.time_ms);
        last.into_iter()
            .chain(self.inflated.map(|(_, end)| end))
            .max()
            .unwrap_or(0)
    }
}

/// Plans about one attack of each kind per five agents, each on a distinct agent per
/// kind, at an active time of the victim after its first third of the simulation (so
/// that it has a baseline to deviate from; an agent that joins late gets four days of
/// its own first). Needs at least four days of traffic.
pub(super) fn plan(
    agents: &[AgentSpec],
    config: &SimConfig,
    dynamics: &Dynamics,
    start_ms: i64,
    kinds: &[AttackKind],
) -> Vec<PlannedAttack> {
    if config.days < 4 || agents.is_empty() {
        return Vec::new();
    }
    let mut rng = SimRng::new(config.seed ^ 0xA77A_C4ED);
    let per_kind = (agents.len() / 5).max(1);
    let first_day = i64::from((config.days / 3).max(2));
    let last_day = i64::from(config.days) - 1;
    let mut attacks = Vec::new();
    for &kind in kinds {
        let mut victims: Vec<usize> = (0..agents.len())
            .filter(|&i| kind != AttackKind::OffHours || agents[i].profile != Profile::AlwaysOnBot)
            .collect();
        for _ in 0..per_kind.min(victims.len()) {
            let pick = rng.below(victims.len() as u64) as usize;
            let agent = &agents[victims.swap_remove(pick)];
            let joined = dynamics.first_day(agent);
            let own_first = |first: i64| {
                if joined > 0 {
                    first.max(joined + 4)
                } else {
                    first
                }
            };
            let at = if kind == AttackKind::OffHours {
                let span = (own_first(first_day.max(4)), last_day);
                quiet_minute(agent, dynamics, start_ms, span, &mut rng)
            } else {
                let span = (own_first(first_day), last_day);
                active_minute(agent, dynamics, start_ms, span, &mut rng)
            };
            let Some(at) = at else {
                continue;
            };
            let other = if kind == AttackKind::CredentialReuse {
                let offset = 1 + rng.below((agents.len() as u64 - 1).max(1)) as usize;
                &agents[(agent.index + offset) % agents.len()]
            } else {
                agent
            };
            attacks.push(PlannedAttack {
                agent: agent.index,
                kind,
                calls: calls(kind, agent, other, at, start_ms, &mut rng),
                impostor: (kind == AttackKind::UnregisteredAgent)
                    .then(|| format!("agent-shadow-{:04}", agent.index)),
                inflated: None,
            });
        }
    }
    attacks.sort_by_key(|a| (a.start_ms(), a.agent));
    attacks
}

/// A minute in which `agent` is normally active, from day `first_day` to before day
/// `last_day` (`days`).
pub(super) fn active_minute(
    agent: &AgentSpec,
    dynamics: &Dynamics,
    start_ms: i64,
    (first_day, last_day): (i64, i64),
    rng: &mut SimRng,
) -> Option<i64> {
    if first_day > last_day {
        return None;
    }
    let span = (last_day - first_day).max(1) as u64;
    for _ in 0..5_000 {
        let day = first_day + rng.below(span) as i64;
        let minute = rng.below(24 * 60 - 30) as i64;
        let at = start_ms + day * DAY_MS + minute * 60_000;
        if dynamics.rate_at(agent, at) > 0.0 && dynamics.rate_at(agent, at + 20 * 60_000) > 0.0 {
            return Some(at);
        }
    }
    None
}

/// A minute, at least `first_day` days in, starting a half hour in which `agent` is
/// never active (so it has a history of not working then).
fn quiet_minute(
    agent: &AgentSpec,
    dynamics: &Dynamics,
    start_ms: i64,
    (first_day, last_day): (i64, i64),
    rng: &mut SimRng,
) -> Option<i64> {
    if first_day > last_day {
        return None;
    }
    let span = (last_day - first_day).max(1) as u64;
    for _ in 0..5_000 {
        let day = first_day + rng.below(span) as i64;
        let hour = rng.below(24) as i64;
        let at = start_ms + day * DAY_MS + hour * HOUR_MS + 10 * 60_000;
        // Quiet at this hour on every day so far, and for the whole attack.
        let never = (0..=day).all(|d| {
            let same_hour = start_ms + d * DAY_MS + hour * HOUR_MS;
            dynamics.rate_at(agent, same_hour) == 0.0
                && dynamics.rate_at(agent, same_hour + 30 * 60_000) == 0.0
        });
        if never {
            return Some(at);
        }
    }
    None
}

/// The credential `agent` uses in the week containing `time_ms`.
pub(super) fn weekly_credential(agent: &AgentSpec, start_ms: i64, time_ms: i64) -> String {
    let week = (time_ms - start_ms).div_euclid(7 * DAY_MS);
    format!("cred-{:04}-w{week}", agent.index)
}

/// The credential `agent` used before the simulation, long expired.
pub(super) fn retired_credential(agent: &AgentSpec) -> String {
    format!("cred-{:04}-old", agent.index)
}

fn calls(
    kind: AttackKind,
    agent: &AgentSpec,
    other: &AgentSpec,
    at: i64,
    start_ms: i64,
    rng: &mut SimRng,
) -> Vec<AttackCall> {
    let main = agent.systems[0].name.clone();
    let typical = agent.typical_bytes();
    let call = AttackCall::new;
    let with_credential = |mut calls: Vec<AttackCall>, credential: String| {
        for c in &mut calls {
            c.credential = Some(credential.clone());
        }
        calls
    };
    let reads = |count: i64, spacing_ms: i64, rng: &mut SimRng| -> Vec<AttackCall> {
        (0..count)
            .map(|i| {
                let bytes = rng.log_normal(typical, agent.bytes_sigma) as u64;
                call(at + i * spacing_ms, agent.pick_action(rng), &main, bytes, 0)
            })
            .collect()
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
        AttackKind::ScopeViolation => {
            let system = OUT_OF_SCOPE[rng.below(OUT_OF_SCOPE.len() as u64) as usize];
            (0..1 + rng.below(3) as i64)
                .map(|i| call(at + i * 90_000, "read", system, typical as u64, 0))
                .collect()
        }
        AttackKind::UnapprovedHighRisk => vec![call(at + 5_000, "delete", &main, 0, 0)],
        AttackKind::CredentialReuse => {
            let stolen = weekly_credential(other, start_ms, at);
            with_credential(reads(3, 60_000, rng), stolen)
        }
        AttackKind::ExpiredCredential => {
            with_credential(reads(3, 60_000, rng), retired_credential(agent))
        }
        AttackKind::OffHours => reads(5, 120_000, rng),
        AttackKind::UnregisteredAgent => with_credential(
            reads(4, 45_000, rng),
            format!("cred-shadow-{:04}", agent.index),
        ),
        AttackKind::DeniedBurst => {
            let mut calls = reads(20, 9_000, rng);
            for c in &mut calls {
                c.outcome = Outcome::Denied;
            }
            calls
        }
        // Planned by `moderate::plan`, which knows the agent's pace and sizes at the
        // time, and by `approvals::plan`, which writes the records they abuse.
        AttackKind::ModerateExfiltration
        | AttackKind::SlowExfiltration
        | AttackKind::ModerateRunaway
        | AttackKind::PeerSystemAccess
        | AttackKind::ForgedApproval
        | AttackKind::ForeignApproval
        | AttackKind::ExpiredApproval
        | AttackKind::ReusedApproval => Vec::new(),
    }
}
