//! The fleet's agents and when each was first seen: the size a rollout's share is
//! taken of.
//!
//! A rollout is a fleet pattern once enough agents show it: at least
//! [`crate::pipeline::FleetParams::min_agents`] and a share of the fleet. Counted as the
//! agents one instance holds, a group of four judged rollouts against a quarter of the
//! fleet while counting sightings across all of it, so five agents made a "rollout"
//! in a fleet of 400 where one instance needs twenty: a coordinated attack on a handful
//! of agents could pass as ordinary change because the service was scaled out.
//!
//! So the fleet is counted as facts, not as a number: each agent and the event time it
//! was first seen. Instances share them through the fleet topic
//! ([`crate::pipeline::FleetRecord::Joined`]), and the size at an event is the count of
//! agents first seen at or before it. That count is the same whatever order the facts
//! arrive in, and an instance that restarts after a crash, replaying events whose
//! agents it had already published, counts as its first run did: an agent first seen
//! after the replayed event does not count yet. (A number per instance, which an
//! earlier build shared, reached the restarted instance ahead of its replay and changed
//! its verdicts.)

use std::collections::HashMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::outbox::Outbox;

/// An agent of the fleet and the event time it was first seen, as instances share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJoined {
    /// The agent.
    pub agent_id: String,
    /// Its first event's time (milliseconds since the Unix epoch).
    pub first_seen_ms: i64,
}

/// Every agent known to the fleet, with when it was first seen.
#[derive(Debug)]
pub struct FleetRoster {
    /// Each agent's first-seen time, and whether this instance learned it itself
    /// (what it merged from others is theirs to publish).
    first_seen: HashMap<CompactString, (i64, bool)>,
    /// The same times, for counting; sorted unless `sorted` says otherwise (agents
    /// mostly join in time order, and counts are asked for rarely).
    times: Vec<i64>,
    sorted: bool,
    unshared: Outbox<AgentJoined>,
}

impl Default for FleetRoster {
    fn default() -> Self {
        FleetRoster {
            first_seen: HashMap::new(),
            times: Vec::new(),
            sorted: true,
            unshared: Outbox::default(),
        }
    }
}

impl FleetRoster {
    /// Notes that `agent` was first seen at `first_seen_ms` (the earlier time wins if
    /// it is known already), to be shared if it changed the roster. Returns whether it
    /// did.
    pub fn join(&mut self, agent: &str, first_seen_ms: i64) -> bool {
        let changed = self.note(agent, first_seen_ms, true);
        if changed {
            self.unshared.queue(|| AgentJoined {
                agent_id: agent.to_owned(),
                first_seen_ms,
            });
        }
        changed
    }

    /// Adds a stored agent (read at start, or restored from a changelog), as the other
    /// cross-agent indexes add theirs.
    pub fn add_agent(&mut self, agent: &str, baseline: &crate::baseline::Baseline) {
        if baseline.events > 0 {
            self.join(agent, baseline.first_seen_ms);
        }
    }

    /// Merges an agent another instance saw (it is theirs to publish, not ours).
    pub fn merge(&mut self, joined: &AgentJoined) {
        self.note(&joined.agent_id, joined.first_seen_ms, false);
    }

    fn note(&mut self, agent: &str, first_seen_ms: i64, own: bool) -> bool {
        match self.first_seen.get_mut(agent) {
            Some((known, _)) if *known <= first_seen_ms => false,
            Some((known, mine)) => {
                *mine = own;
                let old = std::mem::replace(known, first_seen_ms);
                if let Some(at) = self.times.iter().position(|&t| t == old) {
                    self.times[at] = first_seen_ms;
                }
                self.sorted = false;
                true
            }
            None => {
                self.first_seen
                    .insert(CompactString::new(agent), (first_seen_ms, own));
                if self.times.last().is_some_and(|&last| last > first_seen_ms) {
                    self.sorted = false;
                }
                self.times.push(first_seen_ms);
                true
            }
        }
    }

    /// Agents first seen at or before `time_ms`.
    pub fn size_at(&mut self, time_ms: i64) -> usize {
        if !self.sorted {
            self.times.sort_unstable();
            self.sorted = true;
        }
        self.times.partition_point(|&t| t <= time_ms)
    }

    /// Agents known.
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    /// Whether no agent is known.
    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }

    /// Turns sharing on: from now on agents are queued for
    /// [`FleetRoster::take_unshared`], starting with every agent this instance learned
    /// itself so far (agents of its store, or of a time it ran alone, reach the group
    /// too; what it merged from the group is not sent back).
    pub fn share(&mut self) {
        let own = self
            .first_seen
            .iter()
            .filter(|(_, &(_, own))| own)
            .map(|(agent, &(at, _))| AgentJoined {
                agent_id: agent.to_string(),
                first_seen_ms: at,
            });
        self.unshared.open_with(own);
    }

    /// The agents learned since the last call, to publish.
    pub fn take_unshared(&mut self) -> Vec<AgentJoined> {
        self.unshared.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_at_a_time_counts_the_agents_first_seen_by_then() {
        let mut roster = FleetRoster::default();
        for (agent, at) in [("a", 10), ("b", 30), ("c", 20), ("d", 30)] {
            assert!(roster.join(agent, at));
        }
        assert_eq!(
            [5, 10, 25, 30, 99].map(|t| roster.size_at(t)),
            [0, 1, 2, 4, 4]
        );
        // Seen again later: nothing changes. Seen earlier: it counts from then.
        assert!(!roster.join("b", 40));
        assert!(roster.join("b", 15));
        assert_eq!([14, 15, 25].map(|t| roster.size_at(t)), [1, 2, 3]);
        assert_eq!(roster.len(), 4);
    }

    #[test]
    fn facts_merged_in_any_order_give_the_same_counts() {
        let facts = [("a", 10), ("b", 30), ("a", 5), ("c", 20), ("b", 30)];
        let mut forward = FleetRoster::default();
        let mut backward = FleetRoster::default();
        for (agent, at) in facts {
            forward.merge(&AgentJoined {
                agent_id: agent.into(),
                first_seen_ms: at,
            });
        }
        for (agent, at) in facts.iter().rev() {
            backward.join(agent, *at);
        }
        for t in [0, 5, 10, 20, 30] {
            assert_eq!(forward.size_at(t), backward.size_at(t), "at {t}");
        }
        assert_eq!(forward.size_at(4), 0);
        assert_eq!(forward.size_at(5), 1);
    }

    #[test]
    fn sharing_publishes_what_was_known_and_what_is_learned_but_not_what_was_merged() {
        let mut roster = FleetRoster::default();
        roster.join("stored", 1);
        roster.merge(&AgentJoined {
            agent_id: "loaded from the group".into(),
            first_seen_ms: 1,
        });
        roster.share();
        roster.join("new", 2);
        roster.merge(&AgentJoined {
            agent_id: "theirs".into(),
            first_seen_ms: 3,
        });
        let shared: Vec<String> = roster
            .take_unshared()
            .into_iter()
            .map(|joined| joined.agent_id)
            .collect();
        assert_eq!(shared, ["stored", "new"]);
        assert!(roster.take_unshared().is_empty());
    }
}
