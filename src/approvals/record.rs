//! agent-approval v1: a human's approval of high-risk actions, as approval systems write
//! it, and its compiled form.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::time::parse_rfc3339;
use crate::model::CommandSignature;
use crate::pattern::Pattern;
use crate::signing::{RecordKind, Rejection, TrustedKeys};

/// agent-approval v1 (Kafka topic `agent-approvals`, key = `approval_id`; an empty value
/// withdraws the approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "agent-approval.v1",
    description = "A human's approval of an AI agent's high-risk actions: which agent, which actions on which systems, for how long and how many times."
)]
pub struct AgentApprovalV1 {
    /// Always 1 for this version; optional on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: Option<u32>,
    /// The id events carry in `approval_id` (the topic's key).
    #[schemars(length(min = 1, max = 256))]
    pub approval_id: String,
    /// The one agent the approval is granted to.
    #[schemars(length(min = 1, max = 256))]
    pub agent_id: String,
    /// Actions it covers (exact names or `*` patterns).
    #[schemars(length(min = 1))]
    pub actions: Vec<String>,
    /// Systems it covers (exact names or `*` patterns). Absent: any system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systems: Option<Vec<String>>,
    /// The human who said yes.
    #[schemars(length(min = 1, max = 256))]
    pub approved_by: String,
    /// When it was granted (RFC 3339); it covers no action before this (less the grace).
    #[schemars(extend("format" = "date-time"))]
    pub issued_at: String,
    /// When it lapses (RFC 3339); it covers no action at or after this.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// How many actions it covers (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_uses: Option<u32>,
    /// The `command_id` of the `require_approval` command it answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub request_id: Option<String>,
    /// Ed25519 signature over the record's canonical encoding behind the prefix
    /// `agentwatch.agent-approval.v1\n` (see `agentwatch sign-record`). Required when
    /// `[approvals] trusted_keys` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<CommandSignature>,
}

/// Why an approval record was refused. It never takes effect; the record's content is
/// not repeated in the message (it may be forged, and approvals name people).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not shaped like an agent-approval v1.
    #[error("not an agent-approval v1 ({0})")]
    Malformed(String),
    /// Shaped right, but a field is unusable.
    #[error("invalid approval: {0}")]
    Invalid(String),
    /// On the topic, the key is not the record's `approval_id`.
    #[error("the record's key differs from its approval_id")]
    KeyMismatch,
    /// Trusted keys are configured and the record's signature does not satisfy them.
    #[error("signature refused: {0}")]
    Signature(Rejection),
}

impl RecordError {
    /// Stable code, the `code` label of `agentwatch_records_rejected_total`.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Malformed(_) => "malformed",
            RecordError::Invalid(_) => "invalid",
            RecordError::KeyMismatch => "key_mismatch",
            RecordError::Signature(rejection) => rejection.code(),
        }
    }
}

/// Where and how a JSON parse failed, without the text around it: records may be
/// forged and approvals name people, so values never reach logs. A missing field is
/// named (a schema name, not content).
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let class = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong fields or types",
        serde_json::error::Category::Eof => "truncated",
    };
    let message = error.to_string();
    let class = match message.strip_prefix("missing field `") {
        Some(rest) => format!(
            "missing field {}",
            rest.split('`').next().unwrap_or_default()
        ),
        None => class.to_owned(),
    };
    if error.line() == 0 {
        class
    } else {
        format!("{class} at line {} column {}", error.line(), error.column())
    }
}

/// A validated approval, compiled for per-event checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The record as written (for evidence).
    pub spec: AgentApprovalV1,
    actions: Vec<Pattern>,
    systems: Option<Vec<Pattern>>,
    /// `issued_at` in epoch milliseconds.
    pub issued_ms: i64,
    /// `expires_at` in epoch milliseconds.
    pub expires_ms: i64,
    /// `max_uses`, 1 when absent.
    pub max_uses: u32,
}

impl Approval {
    /// Checks the signature (when `trust` holds keys), then parses and validates a
    /// record given as a JSON value.
    pub fn from_value(value: Value, trust: Option<&TrustedKeys>) -> Result<Self, RecordError> {
        if let Some(trust) = trust.filter(|t| !t.is_empty()) {
            trust
                .verify(RecordKind::Approval, &value)
                .map_err(RecordError::Signature)?;
        }
        let spec: AgentApprovalV1 = serde_json::from_value(value)
            .map_err(|e| RecordError::Malformed(describe_json_error(&e)))?;
        Self::compile(spec)
    }

    /// Validates and compiles a record.
    pub fn compile(spec: AgentApprovalV1) -> Result<Self, RecordError> {
        let invalid = |what: &str| Err(RecordError::Invalid(what.to_owned()));
        if spec.schema_version.is_some_and(|v| v != 1) {
            return invalid("schema_version must be 1");
        }
        if spec.approval_id.is_empty() || spec.approval_id.len() > 256 {
            return invalid("approval_id must be 1 to 256 characters");
        }
        if spec.agent_id.is_empty() || spec.agent_id.len() > 256 {
            return invalid("agent_id must be 1 to 256 characters");
        }
        if spec.approved_by.trim().is_empty() {
            return invalid("approved_by must name the human who approved");
        }
        if spec.actions.is_empty() {
            return invalid("actions must list at least one action");
        }
        if spec.systems.as_ref().is_some_and(Vec::is_empty) {
            return invalid("systems, when given, must list at least one system");
        }
        if spec.max_uses == Some(0) {
            return invalid("max_uses must be at least 1");
        }
        let (Some(issued_ms), Some(expires_ms)) = (
            parse_rfc3339(&spec.issued_at),
            parse_rfc3339(&spec.expires_at),
        ) else {
            return invalid("issued_at and expires_at must be RFC 3339 times");
        };
        if expires_ms <= issued_ms {
            return invalid("expires_at must be after issued_at");
        }
        let patterns = |list: &[String]| list.iter().map(|p| Pattern::new(p)).collect();
        Ok(Approval {
            actions: patterns(&spec.actions),
            systems: spec.systems.as_deref().map(patterns),
            issued_ms,
            expires_ms,
            max_uses: spec.max_uses.unwrap_or(1),
            spec,
        })
    }

    /// The approval's id.
    pub fn id(&self) -> &str {
        &self.spec.approval_id
    }

    /// True if the approval covers `action` on `system`.
    pub fn covers(&self, action: &str, system: &str) -> bool {
        self.actions.iter().any(|p| p.matches(action))
            && self
                .systems
                .as_ref()
                .is_none_or(|list| list.iter().any(|p| p.matches(system)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> AgentApprovalV1 {
        serde_json::from_value(serde_json::json!({"approval_id": "apr-551",
            "agent_id": "billing-bot", "actions": ["delete", "tool_call:refund"],
            "systems": ["billing*"], "approved_by": "ana@example.com",
            "issued_at": "2026-10-05T09:00:00Z", "expires_at": "2026-10-05T11:00:00Z"}))
        .unwrap()
    }

    #[test]
    fn compiles_with_defaults_and_matches_patterns() {
        let approval = Approval::compile(spec()).unwrap();
        assert_eq!(approval.max_uses, 1);
        assert!(approval.covers("delete", "billing.eu"));
        assert!(!approval.covers("delete", "crm"));
        assert!(!approval.covers("drop_table", "billing"));
        let mut any_system = spec();
        any_system.systems = None;
        assert!(Approval::compile(any_system)
            .unwrap()
            .covers("delete", "crm"));
    }

    #[test]
    fn bad_records_have_codes_and_no_content_in_messages() {
        let mut backwards = spec();
        backwards.expires_at = "2026-10-05T08:00:00Z".into();
        assert_eq!(Approval::compile(backwards).unwrap_err().code(), "invalid");
        let mut zero = spec();
        zero.max_uses = Some(0);
        assert_eq!(Approval::compile(zero).unwrap_err().code(), "invalid");
        let secret = serde_json::json!({"approval_id": "apr-1", "agent_id": "secret-agent-name"});
        let error = Approval::from_value(secret, None).unwrap_err();
        assert_eq!(error.code(), "malformed");
        assert!(!error.to_string().contains("secret-agent-name"), "{error}");
    }
}
