//! agent-event v1: one action taken by one agent.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the action ended. Unknown outcomes are rejected rather than guessed at, because
/// `denied` and `failure` feed detectors that look for agents probing their boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action did what was asked (the default when the field is absent).
    #[default]
    Success,
    /// The action was attempted and failed.
    Failure,
    /// An access-control layer refused the action.
    Denied,
}

impl Outcome {
    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// A decoded event. Strings borrow from the input buffer whenever the JSON needs no
/// unescaping, so decoding a typical event allocates only for its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Producer-assigned unique id, used for dedup and as evidence.
    pub event_id: Cow<'a, str>,
    /// Event time in epoch milliseconds; all windows are driven by it.
    pub time_ms: i64,
    /// The agent's own identity.
    pub agent_id: Cow<'a, str>,
    /// Verb or tool (`read`, `tool_call:send_email`, ...).
    pub action: Cow<'a, str>,
    /// System or service touched.
    pub system: Cow<'a, str>,
    /// Accountable human, if the producer knows one.
    pub owner: Option<Cow<'a, str>>,
    /// Token or key used for this action.
    pub credential_id: Option<Cow<'a, str>>,
    /// Session context.
    pub session_id: Option<Cow<'a, str>>,
    /// Resource within the system.
    pub resource: Option<Cow<'a, str>>,
    /// Bytes received by the agent.
    pub bytes_in: u64,
    /// Bytes sent by the agent.
    pub bytes_out: u64,
    /// Result of the action.
    pub outcome: Outcome,
    /// Human approval attached to a high-risk action.
    pub approval_id: Option<Cow<'a, str>>,
    /// Anything else, carried into evidence.
    pub attributes: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl Event<'_> {
    /// Total data moved in either direction; volume detectors look at both because
    /// exfiltration can be a large read as much as a large write to an outside system.
    pub fn bytes(&self) -> u64 {
        self.bytes_in.saturating_add(self.bytes_out)
    }
}

/// The time field accepts both forms producers commonly have at hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EventTime {
    /// RFC 3339, e.g. `2026-01-05T09:30:00Z`.
    Rfc3339(String),
    /// Milliseconds since the Unix epoch.
    EpochMillis(i64),
}

/// agent-event v1 as a producer writes it (Kafka key = `agent_id`).
///
/// The engine does not decode into this type (see [`crate::model::decode_event`], which
/// borrows and reports precise error codes); it exists so that the JSON Schema, the
/// simulator and documentation share one definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "agent-event.v1",
    description = "One action taken by one AI agent."
)]
pub struct AgentEventV1 {
    /// Always 1 for this version; optional on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: Option<u32>,
    /// Unique id from the producer; used for dedup and evidence.
    #[schemars(length(min = 1, max = 128))]
    pub event_id: String,
    /// When the action happened; event time drives every window.
    pub time: EventTime,
    /// The agent's own identity (never shared between agents).
    #[schemars(length(min = 1, max = 256))]
    pub agent_id: String,
    /// Verb or tool, e.g. `read`, `write`, `delete`, `tool_call:send_email`.
    #[schemars(length(min = 1, max = 128))]
    pub action: String,
    /// The system or service touched, e.g. `crm`, `hr.payroll`, `s3://finance`.
    #[schemars(length(min = 1, max = 256))]
    pub system: String,
    /// Accountable human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub owner: Option<String>,
    /// The token or key used for this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub credential_id: Option<String>,
    /// Session context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub session_id: Option<String>,
    /// Resource within the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub resource: Option<String>,
    /// Bytes received by the agent (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_in: u64,
    /// Bytes sent by the agent (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_out: u64,
    /// Result of the action (default `success`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Human approval attached to a high-risk action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub approval_id: Option<String>,
    /// Anything else (at most 32 entries), carried into evidence.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub attributes: std::collections::BTreeMap<String, String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
