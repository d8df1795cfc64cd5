//! The check an event's `approval_id` must pass, and the typed rules that say why it
//! failed.

use serde::{Deserialize, Serialize};

use super::Approval;

/// Why a high-risk action's approval does not count. Serialized by name (the alert's
/// `evidence.context.rule`), so SIEM rules can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalRule {
    /// The event carries no `approval_id`.
    ApprovalMissing,
    /// No known approval has that id (forged, withdrawn, or never arrived within the
    /// grace period).
    ApprovalUnknown,
    /// The approval was granted to another agent.
    ApprovalOtherAgent,
    /// The approval does not cover this action on this system.
    ApprovalScope,
    /// The event falls outside the approval's validity: at or after `expires_at`, or
    /// more than the grace period before `issued_at`.
    ApprovalExpired,
    /// The approval has already covered `max_uses` actions.
    ApprovalExhausted,
}

impl ApprovalRule {
    /// Every rule, in the order the check applies them.
    pub const ALL: [ApprovalRule; 6] = [
        ApprovalRule::ApprovalMissing,
        ApprovalRule::ApprovalUnknown,
        ApprovalRule::ApprovalOtherAgent,
        ApprovalRule::ApprovalScope,
        ApprovalRule::ApprovalExpired,
        ApprovalRule::ApprovalExhausted,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalRule::ApprovalMissing => "approval_missing",
            ApprovalRule::ApprovalUnknown => "approval_unknown",
            ApprovalRule::ApprovalOtherAgent => "approval_other_agent",
            ApprovalRule::ApprovalScope => "approval_scope",
            ApprovalRule::ApprovalExpired => "approval_expired",
            ApprovalRule::ApprovalExhausted => "approval_exhausted",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == name)
    }

    /// Why, in words, for alert summaries.
    pub fn explain(self) -> &'static str {
        match self {
            ApprovalRule::ApprovalMissing => "without an approval_id",
            ApprovalRule::ApprovalUnknown => "with an approval_id no known approval has",
            ApprovalRule::ApprovalOtherAgent => "with an approval granted to another agent",
            ApprovalRule::ApprovalScope => {
                "with an approval that does not cover this action on this system"
            }
            ApprovalRule::ApprovalExpired => "with an approval that was not valid at the time",
            ApprovalRule::ApprovalExhausted => "with an approval that was already used up",
        }
    }
}

/// What is being approved: one event's agent, action, system and time.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The acting agent.
    pub agent_id: &'a str,
    /// The action.
    pub action: &'a str,
    /// The system.
    pub system: &'a str,
    /// Event time (ms).
    pub time_ms: i64,
}

/// Checks `request` against `approval`, which has already covered `uses` actions. The
/// rules apply in [`ApprovalRule::ALL`] order, so the reason given is the most basic
/// one. `grace_ms` lets an approval issued slightly *after* its action (clock skew,
/// a human who clicked a few seconds late) still cover it.
pub fn check(
    approval: &Approval,
    request: Request<'_>,
    uses: u32,
    grace_ms: i64,
) -> Result<(), ApprovalRule> {
    if approval.spec.agent_id != request.agent_id {
        return Err(ApprovalRule::ApprovalOtherAgent);
    }
    if !approval.covers(request.action, request.system) {
        return Err(ApprovalRule::ApprovalScope);
    }
    let valid_from = approval.issued_ms.saturating_sub(grace_ms);
    if request.time_ms < valid_from || request.time_ms >= approval.expires_ms {
        return Err(ApprovalRule::ApprovalExpired);
    }
    if uses >= approval.max_uses {
        return Err(ApprovalRule::ApprovalExhausted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_rfc3339;

    fn approval() -> Approval {
        Approval::compile(
            serde_json::from_value(serde_json::json!({"approval_id": "apr-551",
                "agent_id": "billing-bot", "actions": ["delete"], "systems": ["billing"],
                "approved_by": "ana@example.com", "max_uses": 2,
                "issued_at": "2026-10-05T09:00:00Z", "expires_at": "2026-10-05T11:00:00Z"}))
            .unwrap(),
        )
        .unwrap()
    }

    fn at(time: &str) -> Request<'static> {
        Request {
            agent_id: "billing-bot",
            action: "delete",
            system: "billing",
            time_ms: parse_rfc3339(time).unwrap(),
        }
    }

    const GRACE: i64 = 120_000;

    #[test]
    fn a_matching_request_passes_until_used_up() {
        let approval = approval();
        assert_eq!(
            check(&approval, at("2026-10-05T10:00:00Z"), 0, GRACE),
            Ok(())
        );
        assert_eq!(
            check(&approval, at("2026-10-05T10:00:00Z"), 1, GRACE),
            Ok(())
        );
        assert_eq!(
            check(&approval, at("2026-10-05T10:00:00Z"), 2, GRACE),
            Err(ApprovalRule::ApprovalExhausted)
        );
    }

    #[test]
    fn another_agent_is_refused() {
        let request = Request {
            agent_id: "hr-bot",
            ..at("2026-10-05T10:00:00Z")
        };
        assert_eq!(
            check(&approval(), request, 0, GRACE),
            Err(ApprovalRule::ApprovalOtherAgent)
        );
    }

    #[test]
    fn another_action_or_system_is_out_of_scope() {
        let request = Request {
            system: "crm",
            ..at("2026-10-05T10:00:00Z")
        };
        assert_eq!(
            check(&approval(), request, 0, GRACE),
            Err(ApprovalRule::ApprovalScope)
        );
        let request = Request {
            action: "transfer_funds",
            ..at("2026-10-05T10:00:00Z")
        };
        assert_eq!(
            check(&approval(), request, 0, GRACE),
            Err(ApprovalRule::ApprovalScope)
        );
    }

    #[test]
    fn validity_is_issued_at_less_grace_to_expires_at() {
        let approval = approval();
        assert_eq!(
            check(&approval, at("2026-10-05T11:00:00Z"), 0, GRACE),
            Err(ApprovalRule::ApprovalExpired)
        );
        // Two minutes of grace before issue: the human clicked a little late.
        assert_eq!(
            check(&approval, at("2026-10-05T08:58:00Z"), 0, GRACE),
            Ok(())
        );
        assert_eq!(
            check(&approval, at("2026-10-05T08:57:59Z"), 0, GRACE),
            Err(ApprovalRule::ApprovalExpired)
        );
        assert_eq!(
            check(&approval, at("2026-10-05T08:59:59Z"), 0, 0),
            Err(ApprovalRule::ApprovalExpired)
        );
    }

    #[test]
    fn rules_serialize_by_name() {
        for rule in ApprovalRule::ALL {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
            assert_eq!(ApprovalRule::from_name(rule.as_str()), Some(rule));
        }
    }
}
