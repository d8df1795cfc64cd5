//! Commands against healthy agents.
//!
//! An alert costs a reviewer a minute; a `revoke_credential` or `suspend_agent` on an
//! agent that did nothing wrong stops someone's work. So an evaluation names every agent
//! without a labelled incident that was commanded, and with what.

use std::collections::{BTreeMap, BTreeSet};

use super::Incident;
use crate::model::CommandAction;

/// The minimum an evaluation needs to know about a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMark {
    /// The agent it applies to.
    pub agent_id: String,
    /// Event time of the command.
    pub time_ms: i64,
    /// What it orders.
    pub action: CommandAction,
    /// The detector instance whose alert it answers.
    pub detector: String,
    /// The system of the event behind that alert, when known (so a test can ask what a
    /// rollout or an outage of one system caused).
    pub system: Option<String>,
}

/// Per healthy agent (no labelled incident), how many commands of each action it got.
pub type HealthyCommands = BTreeMap<String, BTreeMap<CommandAction, u64>>;

/// The commands in `commands` on agents without any incident in `incidents`.
pub fn healthy_commands(incidents: &[Incident], commands: &[CommandMark]) -> HealthyCommands {
    let attacked: BTreeSet<&str> = incidents.iter().map(|i| i.agent_id.as_str()).collect();
    let mut healthy = HealthyCommands::new();
    for command in commands {
        if !attacked.contains(command.agent_id.as_str()) {
            *healthy
                .entry(command.agent_id.clone())
                .or_default()
                .entry(command.action)
                .or_default() += 1;
        }
    }
    healthy
}
