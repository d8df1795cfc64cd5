//! command v1: a time-boxed response for the systems that enforce access.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an enforcer should do. Ordered from mildest to strongest, so escalation is `max`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// Hold the agent's high-risk actions until a human approves them.
    RequireApproval,
    /// Revoke the credential named in the command.
    RevokeCredential,
    /// Stop the agent altogether.
    SuspendAgent,
}

impl CommandAction {
    /// All actions, mildest first.
    pub const ALL: [CommandAction; 3] = [
        CommandAction::RequireApproval,
        CommandAction::RevokeCredential,
        CommandAction::SuspendAgent,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandAction::RequireApproval => "require_approval",
            CommandAction::RevokeCredential => "revoke_credential",
            CommandAction::SuspendAgent => "suspend_agent",
        }
    }
}

/// Why the command was issued: the alert it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandReason {
    /// The alert that triggered the command.
    pub alert_id: String,
    /// That alert's one-sentence summary.
    pub summary: String,
}

/// command v1 (Kafka key = `agent_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "command.v1",
    description = "A time-boxed response command for access enforcers."
)]
pub struct Command {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Deterministic: a hash of the alert id and the action.
    #[schemars(length(min = 32, max = 32))]
    pub command_id: String,
    /// Event time of the triggering event (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    /// What to do.
    pub action: CommandAction,
    /// The agent it applies to.
    pub agent_id: String,
    /// The credential to revoke (always set for `revoke_credential`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Accountable human, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The alert behind the command.
    pub reason: CommandReason,
    /// When the command lapses (RFC 3339). Repeat offenders get longer ones.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// Which engine issued it.
    pub issued_by: String,
    /// Ed25519 signature over the command's canonical encoding (README, "Verifying
    /// commands"). Absent only when no signing key is configured, and an enforcer must
    /// then refuse the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<CommandSignature>,
}

/// Who vouches for a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandSignature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Id of the signing key (16 hex digits: the first 8 bytes of BLAKE3 of the public
    /// key), so that keys can be rotated and enforcers can trust several.
    #[schemars(length(min = 16, max = 16))]
    pub key_id: String,
    /// Base64 of the 64-byte signature over `"agentwatch.command.v1\n"` followed by the
    /// command without `signature` as JSON with sorted keys and no whitespace.
    pub value: String,
}
