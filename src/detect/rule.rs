//! Which rule a policy finding broke, as a type.
//!
//! Policy kinds (registry boundaries, approvals, credentials, declared hours) state
//! facts rather than statistics. Each fact names its [`Rule`]; the kind's `summarize`
//! and `explain` match on it. Alerts carry the rule's text as the evidence's statistic
//! (and in `evidence.context.rule` where a kind adds it) and, for the alert v1 wire
//! format, the number that field has always held ([`Rule::wire_value`]), derived here
//! and nowhere else.

use serde::Serialize;

use crate::approvals::ApprovalRule;

/// A policy rule a finding broke, serialized by name (`snake_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `scope_violation`: the system is outside the record's `allowed_systems`.
    SystemOutOfScope,
    /// `scope_violation`: the action is outside the record's `allowed_actions`.
    ActionOutOfScope,
    /// `scope_violation`: both.
    SystemAndActionOutOfScope,
    /// `unregistered_agent`: the enforced registry does not list the agent.
    NotInRegistry,
    /// `unregistered_agent`: the record names no owner.
    NoOwner,
    /// `high_risk_action`: on the instance's global high-risk list, without approval.
    GlobalHighRisk,
    /// `high_risk_action`: on the agent's own high-risk list, without approval.
    AgentHighRisk,
    /// `high_risk_action`: restricted for restricted-tier agents, without approval.
    RestrictedTierHighRisk,
    /// `off_hours`: outside the working hours the registry declares.
    OutsideDeclaredHours,
    /// `credential_misuse`: issued to another agent.
    CredentialOfAnotherAgent,
    /// `credential_misuse`: not among the agent's declared credentials.
    CredentialNotIssued,
    /// `credential_misuse`: used after expiry.
    CredentialExpired,
    /// `credential_misuse`: seen with another agent first.
    CredentialShared,
    /// `credential_misuse`: older than `max_age`.
    CredentialTooOld,
    /// `high_risk_action`: no `approval_id` (see [`ApprovalRule`] for these six).
    ApprovalMissing,
    /// `high_risk_action`: no known approval has the `approval_id`.
    ApprovalUnknown,
    /// `high_risk_action`: the approval was granted to another agent.
    ApprovalOtherAgent,
    /// `high_risk_action`: the approval does not cover this action on this system.
    ApprovalScope,
    /// `high_risk_action`: the approval was not valid at the event's time.
    ApprovalExpired,
    /// `high_risk_action`: the approval was already used `max_uses` times.
    ApprovalExhausted,
}

impl From<ApprovalRule> for Rule {
    fn from(rule: ApprovalRule) -> Self {
        match rule {
            ApprovalRule::ApprovalMissing => Rule::ApprovalMissing,
            ApprovalRule::ApprovalUnknown => Rule::ApprovalUnknown,
            ApprovalRule::ApprovalOtherAgent => Rule::ApprovalOtherAgent,
            ApprovalRule::ApprovalScope => Rule::ApprovalScope,
            ApprovalRule::ApprovalExpired => Rule::ApprovalExpired,
            ApprovalRule::ApprovalExhausted => Rule::ApprovalExhausted,
        }
    }
}

impl Rule {
    /// The rule's name (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Rule::SystemOutOfScope => "system_out_of_scope",
            Rule::ActionOutOfScope => "action_out_of_scope",
            Rule::SystemAndActionOutOfScope => "system_and_action_out_of_scope",
            Rule::NotInRegistry => "not_in_registry",
            Rule::NoOwner => "no_owner",
            Rule::GlobalHighRisk => "global_high_risk",
            Rule::AgentHighRisk => "agent_high_risk",
            Rule::RestrictedTierHighRisk => "restricted_tier_high_risk",
            Rule::OutsideDeclaredHours => "outside_declared_hours",
            Rule::CredentialOfAnotherAgent => "credential_of_another_agent",
            Rule::CredentialNotIssued => "credential_not_issued",
            Rule::CredentialExpired => "credential_expired",
            Rule::CredentialShared => "credential_shared",
            Rule::CredentialTooOld => "credential_too_old",
            Rule::ApprovalMissing => ApprovalRule::ApprovalMissing.as_str(),
            Rule::ApprovalUnknown => ApprovalRule::ApprovalUnknown.as_str(),
            Rule::ApprovalOtherAgent => ApprovalRule::ApprovalOtherAgent.as_str(),
            Rule::ApprovalScope => ApprovalRule::ApprovalScope.as_str(),
            Rule::ApprovalExpired => ApprovalRule::ApprovalExpired.as_str(),
            Rule::ApprovalExhausted => ApprovalRule::ApprovalExhausted.as_str(),
        }
    }

    /// What an alert's evidence calls the broken rule (its `statistic`).
    pub fn statistic(self) -> &'static str {
        match self {
            Rule::SystemOutOfScope => "system outside allowed_systems",
            Rule::ActionOutOfScope => "action outside allowed_actions",
            Rule::SystemAndActionOutOfScope => "system and action outside the granted boundary",
            Rule::NotInRegistry => "agent not in registry",
            Rule::NoOwner => "registered agent has no owner",
            Rule::GlobalHighRisk | Rule::AgentHighRisk | Rule::RestrictedTierHighRisk => {
                "high-risk action without approval"
            }
            Rule::OutsideDeclaredHours => "outside declared working hours",
            Rule::CredentialOfAnotherAgent => "credential issued to another agent",
            Rule::CredentialNotIssued => "credential not issued to this agent",
            Rule::CredentialExpired => "credential used after expiry",
            Rule::CredentialShared => "credential shared between agents",
            Rule::CredentialTooOld => "credential older than max_age",
            Rule::ApprovalMissing => "high-risk action without approval",
            Rule::ApprovalUnknown => "approval_id names no known approval",
            Rule::ApprovalOtherAgent => "approval granted to another agent",
            Rule::ApprovalScope => "approval does not cover this action and system",
            Rule::ApprovalExpired => "approval not valid at the event's time",
            Rule::ApprovalExhausted => "approval already used up",
        }
    }

    /// The number alert v1 carries in `evidence.statistic_value` for this rule. The
    /// schema requires the field and consumers may read it, so it keeps the values
    /// earlier builds emitted; nothing inside agentwatch reads it back.
    pub fn wire_value(self) -> f64 {
        match self {
            Rule::SystemOutOfScope => 1.0,
            Rule::ActionOutOfScope => 2.0,
            Rule::SystemAndActionOutOfScope => 3.0,
            Rule::NotInRegistry => 1.0,
            Rule::NoOwner => 2.0,
            Rule::GlobalHighRisk => 1.0,
            Rule::AgentHighRisk => 2.0,
            Rule::RestrictedTierHighRisk => 3.0,
            Rule::OutsideDeclaredHours => -1.0,
            Rule::CredentialOfAnotherAgent => 0.0,
            Rule::CredentialNotIssued => 1.0,
            Rule::CredentialExpired => 2.0,
            Rule::CredentialShared => 3.0,
            Rule::CredentialTooOld => 4.0,
            Rule::ApprovalMissing => 1.0,
            Rule::ApprovalUnknown => 2.0,
            Rule::ApprovalOtherAgent => 3.0,
            Rule::ApprovalScope => 4.0,
            Rule::ApprovalExpired => 5.0,
            Rule::ApprovalExhausted => 6.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_serialize_by_name() {
        for rule in [
            Rule::NoOwner,
            Rule::OutsideDeclaredHours,
            Rule::CredentialShared,
            Rule::ApprovalExhausted,
        ] {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.name()));
        }
    }
}
