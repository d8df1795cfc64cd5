//! alert v1: an explained finding, for people and SIEMs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// How urgently a person should look. Ordered, so tiers compare naturally.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording, not worth a page.
    Info,
    /// Unusual; review in the normal course of work.
    Low,
    /// Clearly unusual; review today.
    Medium,
    /// Very unlikely under the agent's baseline; act now.
    High,
    /// As unlikely as the statistics can say; act now and assume compromise.
    Critical,
}

impl Severity {
    /// All severities, mildest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What kind of deviation was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Anomaly {
    /// Something this agent has never done.
    Unseen,
    /// Something this agent has almost never done.
    Rare,
    /// More data moved than the agent's own distribution allows.
    HighVolume,
    /// More calls per window than the agent's own distribution allows.
    HighRate,
    /// Activity at a time the agent is not active.
    OffHours,
    /// A rule was broken (facts, not statistics).
    Policy,
    /// Far more denied or failed actions than the agent's own failure rate allows (an
    /// agent probing its boundaries).
    Probing,
}

/// The detector instance that produced the finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DetectorRef {
    /// Instance id (`detectors/<id>.toml`).
    pub id: String,
    /// Detector kind (Rust code).
    pub kind: String,
}

/// Why the engine believes this is unusual, in numbers a reviewer can check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What was observed (in `unit`).
    pub observed: f64,
    /// What the agent's baseline expected (in `unit`).
    pub expected: f64,
    /// Unit of `observed` and `expected` (`bytes`, `calls/window`, `novel systems/event`).
    pub unit: String,
    /// Name of the test statistic.
    pub statistic: String,
    /// Its value.
    pub statistic_value: f64,
    /// Tail probability of seeing something at least this extreme under the baseline.
    pub p_value: f64,
    /// How many observations the baseline is built from.
    pub baseline_size: u64,
    /// How old the agent's baseline is, in hours of event time.
    pub baseline_age_hours: f64,
    /// Context that helps a reviewer (the system touched, the window, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// alert v1 (Kafka key = `agent_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "alert.v1",
    description = "An explained finding about one agent's behaviour."
)]
pub struct Alert {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Deterministic: a hash of detector id, agent id and triggering event id, so replays,
    /// restarts and the Kafka path all give the same id for the same finding. A fleet
    /// alert's hashes the pattern, the system and the episode instead, so members of a
    /// group announcing one episode on different agents give one id.
    #[schemars(length(min = 32, max = 32))]
    pub alert_id: String,
    /// Event time of the triggering event (RFC 3339).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub time: Timestamp,
    /// The agent.
    pub agent_id: String,
    /// Accountable human, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Which detector instance fired.
    pub detector: DetectorRef,
    /// How urgent.
    pub severity: Severity,
    /// 0..1; `-log10(p) / 10`, so 0.3 means p = 0.001 and 1.0 means p ≤ 1e-10.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score: f64,
    /// The agent's accumulated risk after this finding (decays with a half-life).
    #[schemars(range(min = 0.0))]
    pub risk: f64,
    /// Kind of deviation.
    pub anomaly: Anomaly,
    /// One human sentence with numbers.
    pub summary: String,
    /// The numbers behind the summary.
    pub evidence: Evidence,
    /// Events that triggered the finding.
    #[schemars(length(min = 1))]
    pub event_ids: Vec<String>,
    /// Credential used by the triggering event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Ids of commands issued together with this alert.
    pub commands: Vec<String>,
    /// How many similar findings the cooldown swallowed since the previous alert.
    pub suppressed: u64,
    /// Set on a fleet alert: the same deviation on many agents at once (a rollout, an
    /// outage), reported once instead of once per agent and never answered with
    /// commands. `agent_id` is then the agent whose finding announced it (or, for an
    /// episode a group member announces on learning of another member's late
    /// announcement, the agent whose sighting began it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetScopeEvidence>,
}

/// What a fleet alert covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetScopeEvidence {
    /// The pattern: `first_use` (a rollout) or `failures` (an outage).
    pub pattern: String,
    /// The system all of them touched.
    pub system: String,
    /// Distinct agents showing the pattern within the window.
    pub agents: u64,
    /// Up to five of them, earliest first.
    pub sample_agents: Vec<String>,
    /// The window the agents fell in, in hours.
    pub window_hours: f64,
}
