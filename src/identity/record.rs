//! agent-record v1: what the registry knows about one agent, as operators write it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much an agent is trusted. A lower tier widens what counts as high-risk (see the
/// `high_risk_action` detector's `restricted_actions`), so routine work by a trusted
/// agent flows while the same action by a restricted one waits for a human.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TrustTier {
    /// New, experimental or third-party agents: more of their actions need approval.
    Restricted,
    /// The default.
    #[default]
    Standard,
    /// Agents whose owners vouch for broad, high-impact work.
    Privileged,
}

impl TrustTier {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::Restricted => "restricted",
            TrustTier::Standard => "standard",
            TrustTier::Privileged => "privileged",
        }
    }
}

/// A credential issued to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuedCredential {
    /// The credential id as events carry it in `credential_id` (never the secret itself).
    #[schemars(length(min = 1, max = 256))]
    pub id: String,
    /// When it was issued (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub issued_at: String,
    /// When it stops being valid (RFC 3339). Absent means it never expires, which the
    /// `credential_misuse` detector's `max_age` check is there to catch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// Day of the week, for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Monday to Friday: the working week most declared schedules use.
    pub const WORKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
}

impl WorkingHours {
    /// How local time is declared, for people: the zone name, `UTC+01:00`, or `UTC`.
    pub fn zone_label(&self) -> String {
        match (&self.timezone, &self.utc_offset) {
            (Some(zone), _) => zone.clone(),
            (None, Some(offset)) => format!("UTC{offset}"),
            (None, None) => "UTC".to_owned(),
        }
    }
}

impl Weekday {
    /// Monday = 0.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// When an agent is expected to work, in its owner's local time.
///
/// Local time is given either by an IANA zone (`timezone`, daylight saving time
/// included) or by a fixed `utc_offset`, never both; with neither it is UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = { "required": ["utc_offset", "timezone"] }))]
pub struct WorkingHours {
    /// Days on which it works.
    #[schemars(length(min = 1))]
    pub days: Vec<Weekday>,
    /// First working hour (`HH:MM`, local time; minutes must be `00`).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):00$"))]
    pub start: String,
    /// End of the last working hour (`HH:MM`, exclusive; `24:00` for midnight). An end
    /// before the start wraps past midnight (a night shift).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-4]):00$"))]
    pub end: String,
    /// Fixed offset of local time from UTC (`+01:00`, `-05:00`; default `+00:00`). It
    /// does not follow daylight saving time: for owners whose clocks change, use
    /// `timezone` instead. Not together with `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[+-]([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub utc_offset: Option<String>,
    /// IANA time zone of local time (`Europe/Berlin`, `America/New_York`). Each instant
    /// is judged in the zone's local time at that instant, so 09:00 stays 09:00 on both
    /// sides of a daylight-saving change. Not together with `utc_offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,
}

/// agent-record v1: one agent's identity, owner and access boundary (Kafka topic
/// `agent-registry`, key = `agent_id`; an empty value removes the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "agent-record.v1",
    description = "One AI agent's identity, accountable owner and access boundary."
)]
pub struct AgentRecordV1 {
    /// Always 1 for this version; optional on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: Option<u32>,
    /// The agent's identity, as its events carry it.
    #[schemars(length(min = 1, max = 256))]
    pub agent_id: String,
    /// The accountable human (named on every alert and command about the agent).
    #[schemars(length(min = 1, max = 256))]
    pub owner: String,
    /// What the agent is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Trust tier (default `standard`).
    #[serde(default)]
    pub tier: TrustTier,
    /// Systems the agent may touch (exact names or `*` patterns). Absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_systems: Option<Vec<String>>,
    /// Actions the agent may take (exact names or `*` patterns). Absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_actions: Option<Vec<String>>,
    /// Actions that need a human approval (`approval_id`) for this agent, on top of the
    /// global list in the `high_risk_action` detector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub high_risk_actions: Vec<String>,
    /// Credentials issued to the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<IssuedCredential>,
    /// Declared working hours; activity outside them is `off_hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<WorkingHours>,
    /// Ed25519 signature over the record's canonical encoding behind the prefix
    /// `agentwatch.agent-record.v1\n` (see `agentwatch sign-record`). Required on the
    /// registry topic when `[registry] trusted_keys` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::model::CommandSignature>,
}
