//! Which agent first used each credential, learned from the fleet's traffic.
//!
//! Per-agent state cannot see that two agents share one credential, so the engine keeps
//! this one cross-agent map. It holds only what agents' baselines have *learned*
//! (anomalous uses are never recorded), so it is rebuilt exactly from the state store
//! on start ([`CredentialLedger::rebuild`]) and needs no storage of its own.
//!
//! In a group, an instance sees only its partitions' agents, so two agents sharing a
//! credential on two instances would go unseen. The service therefore shares every
//! learned first use through a compacted topic ([`crate::config::credentials_topic`]),
//! and each instance merges every other's into its ledger. The merge keeps the earliest
//! use whatever the order records arrive in, so every instance converges on the same
//! first agent per credential.

use compact_str::CompactString;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::outbox::Outbox;
use crate::state::{AgentState, StateStore};

/// Credential id → (first agent to use it, time of that first use).
#[derive(Debug, Default)]
pub struct CredentialLedger {
    first_use: HashMap<CompactString, (CompactString, i64)>,
    /// Uses learned here and not yet handed out for sharing.
    unshared: Outbox<CredentialUse>,
}

/// An agent's first learned use of a credential: what instances share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialUse {
    /// The credential.
    pub credential_id: String,
    /// The agent that used it.
    pub agent_id: String,
    /// When that agent first used it (milliseconds since the Unix epoch).
    pub first_use_ms: i64,
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

    /// Records a use this instance learned; with sharing on, also queues it for
    /// [`CredentialLedger::take_unshared`].
    pub fn learned(&mut self, credential: &str, agent_id: &str, time_ms: i64) {
        self.record(credential, agent_id, time_ms);
        self.unshared.queue(|| CredentialUse {
            credential_id: credential.to_owned(),
            agent_id: agent_id.to_owned(),
            first_use_ms: time_ms,
        });
    }

    /// Turns sharing on: from now on learned uses are queued, starting with every first
    /// use known so far (so uses learned before sharing, or by an instance that ran
    /// alone, reach the group too).
    pub fn share(&mut self) {
        let known = self
            .first_use
            .iter()
            .map(|(credential, (agent, at))| CredentialUse {
                credential_id: credential.to_string(),
                agent_id: agent.to_string(),
                first_use_ms: *at,
            });
        self.unshared.open_with(known);
    }

    /// The uses learned since the last call, to publish.
    pub fn take_unshared(&mut self) -> Vec<CredentialUse> {
        self.unshared.take()
    }

    /// Merges a use another instance learned.
    pub fn merge(&mut self, shared: &CredentialUse) {
        self.record(&shared.credential_id, &shared.agent_id, shared.first_use_ms);
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

    #[test]
    fn shared_uses_converge_on_the_earliest_whichever_instance_learned_it() {
        let mut here = CredentialLedger::default();
        here.learned("k", "b", 20);
        here.share();
        here.learned("j", "b", 25);
        let published = here.take_unshared();
        assert_eq!(
            published
                .iter()
                .map(|u| u.credential_id.as_str())
                .collect::<Vec<_>>(),
            ["k", "j"],
            "what was known before sharing is published too"
        );
        assert!(here.take_unshared().is_empty());
        let mut there = CredentialLedger::default();
        there.learned("k", "a", 10);
        for shared in &published {
            there.merge(shared);
        }
        here.merge(&CredentialUse {
            credential_id: "k".into(),
            agent_id: "a".into(),
            first_use_ms: 10,
        });
        assert_eq!(here.first_use("k"), Some(("a", 10)));
        assert_eq!(there.first_use("k"), Some(("a", 10)));
        assert_eq!(there.first_use("j"), Some(("b", 25)));
    }

    #[test]
    fn without_sharing_nothing_is_queued() {
        let mut ledger = CredentialLedger::default();
        ledger.learned("k", "a", 10);
        assert!(ledger.take_unshared().is_empty());
    }
}
