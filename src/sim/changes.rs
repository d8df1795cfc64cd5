//! The record of what legitimately changed in a simulated fleet, written next to the
//! labels (`simulate --changes FILE`).
//!
//! Labels say what a detector must catch; this says what it must absorb. Without it a
//! person looking at an alert storm after a rollout, or a test asserting that an outage
//! commands no agent, would have to reverse-engineer the simulator to know which agents
//! changed and when.

use serde::{Deserialize, Serialize};

/// One legitimate change: who changed, from when, and how (the changes file is a JSON
/// array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What kind of change ([`ChangeKind::name`](super::ChangeKind::name)).
    pub kind: String,
    /// The agents it applies to.
    pub agents: Vec<String>,
    /// When it starts (RFC 3339); for changes that are for good, when they take effect.
    pub start: String,
    /// When it ends (RFC 3339), for changes that end (an outage) or roll out over a span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The system involved, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// What happens, in words and numbers.
    pub detail: String,
}
