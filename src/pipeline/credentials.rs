//! Which agent first used each credential, learned from the fleet's traffic.
//!
//! Per-agent state cannot see that two agents share one credential, so the engine keeps
//! this one cross-agent map. It holds only what agents' baselines have *learned*
//! (anomalous uses are never recorded), so it is rebuilt exactly from the state store
//! on start ([`CredentialLedger::rebuild`]) and needs no storage of its own.

use compact_str::CompactString;
use hashbrown::HashMap;

use crate::error::Result;
use crate::state::{AgentState, StateStore};

/// Credential id → (first agent to use it, time of that first use).
#[derive(Debug, Default)]
pub struct CredentialLedger {
    first_use: HashMap<CompactString, (CompactString, i64)>,
}

impl CredentialLedger {
    /// Rebuilds the ledger from every agent's learned credentials in `store`.
    pub fn rebuild(store: &StateStore) -> Result<Self> {
        let mut ledger = CredentialLedger::default();
        store.for_each_agent(|agent_id, state| ledger.add_agent(agent_id, &state))?;
        Ok(ledger)
    }

    /// Adds a stored agent's learned credentials.
    pub fn add_agent(&mut self, agent_id: &str, state: &AgentState) {
        for seen in state.baseline.credentials.iter() {
            self.record(&seen.name, agent_id, seen.first_ms);
        }
    }

    /// The first use of `credential`, if any agent has used it.
    pub fn first_use(&self, credential: &str) -> Option<(&str, i64)> {
        self.first_use
            .get(credential)
            .map(|(agent, at)| (agent.as_str(), *at))
    }

    /// Records a learned use. The earliest use wins, so the result does not depend on
    /// the order agents are visited in.
    pub fn record(&mut self, credential: &str, agent_id: &str, time_ms: i64) {
        match self.first_use.get_mut(credential) {
            Some(first) if (time_ms, agent_id) < (first.1, first.0.as_str()) => {
                *first = (CompactString::new(agent_id), time_ms);
            }
            Some(_) => {}
            None => {
                self.first_use.insert(
                    CompactString::new(credential),
                    (CompactString::new(agent_id), time_ms),
                );
            }
        }
    }

    /// Credentials known.
    pub fn len(&self) -> usize {
        self.first_use.len()
    }

    /// True when no credential has been seen.
    pub fn is_empty(&self) -> bool {
        self.first_use.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_use_wins_whatever_the_order() {
        let mut ledger = CredentialLedger::default();
        ledger.record("k", "b", 20);
        ledger.record("k", "a", 10);
        ledger.record("k", "c", 30);
        assert_eq!(ledger.first_use("k"), Some(("a", 10)));
        assert_eq!(ledger.first_use("other"), None);
    }
}
