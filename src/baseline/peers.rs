//! Which systems each owner's agents use: the peer context of `new_system`.
//!
//! A system that is new to an agent but used by its peers (the other agents of the
//! same accountable owner) is less surprising than one none of them touches: teams
//! share tools, and an agent picking up its team's wiki is ordinary. How much less is
//! learned from the fleet itself: of all the first uses agents have made, the share
//! that landed outside their peers' systems ([`PeerContext::outside_share`]).
//!
//! ## The same across restarts and instances
//!
//! For each owner's system the index keeps the two earliest agents to use it (their
//! first use in event time, and a hash of the agent id). A first use by agent `A` at
//! `t` is inside the team when some *other* agent used the system at or before `t`,
//! or `A` itself strictly before `t` (a system it re-learns after its bounded table
//! evicted it). The two earliest users are enough to tell: if any such use exists, one
//! of them is. "Earliest two" merges in any order, so the same facts give the same
//! index however they arrive, and a fact learned twice changes nothing:
//!
//! - on start the index is rebuilt from the stored baselines (each system's first use
//!   is in its table);
//! - in a consumer group the instances share first uses through the fleet topic
//!   ([`PeerUse`]), so an agent's peers on other instances count, and an instance
//!   restarted or replaced with an empty disk gets back what bounded systems tables
//!   have evicted;
//! - an agent's own first use, published before a crash and replayed after it, is not
//!   its peers', and a peer's first use that came later in event time does not count
//!   for an earlier one.

use compact_str::CompactString;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use super::Baseline;
use crate::outbox::Outbox;

/// Most systems remembered per owner (beyond it, further systems count as unused).
const MAX_SYSTEMS_PER_OWNER: usize = 4_096;

/// Owner → system → its earliest users, and where first uses land.
#[derive(Debug, Default)]
pub struct PeerIndex {
    by_owner: HashMap<CompactString, HashMap<CompactString, FirstUsers>>,
    /// First uses of a system that some peer already used.
    inside: u64,
    /// First uses of a system no peer used.
    outside: u64,
    /// First uses learned here and not yet handed out for sharing.
    unshared: Outbox<PeerUse>,
}

/// The two earliest distinct agents to use a system, as `(first use in ms, agent
/// hash)`, earliest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FirstUsers([Option<(i64, u64)>; 2]);

impl FirstUsers {
    /// Adds an agent's first use; returns true if the two earliest changed.
    fn note(&mut self, time_ms: i64, agent: u64) -> bool {
        let before = *self;
        let mut users = [self.0[0], self.0[1], Some((time_ms, agent))];
        for held in users.iter_mut().take(2).flatten() {
            if held.1 == agent {
                held.0 = held.0.min(time_ms);
                users[2] = None;
                break;
            }
        }
        users.sort_by_key(|user| user.unwrap_or((i64::MAX, u64::MAX)));
        self.0 = [users[0], users[1]];
        *self != before
    }

    /// True if the system was known to `agent`'s team before a first use at `time_ms`:
    /// another agent used it at or before then, or `agent` itself strictly before (a
    /// system it re-learns after its bounded table evicted it, not the same first use
    /// replayed after a crash).
    fn known_before(&self, agent: u64, time_ms: i64) -> bool {
        self.0
            .iter()
            .flatten()
            .any(|&(first_ms, user)| first_ms < time_ms || (user != agent && first_ms == time_ms))
    }
}

/// An agent's first use of a system, as the instances of a group share it (a record
/// of the fleet topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerUse {
    /// The agent's accountable owner.
    pub owner: String,
    /// The system.
    pub system: String,
    /// The agent.
    pub agent_id: String,
    /// When it first used the system (event time, milliseconds since the Unix epoch).
    pub first_ms: i64,
}

/// A stable 64-bit hash of an agent id (BLAKE3 prefix): instances of different builds
/// must agree on it, as they merge each other's first uses.
fn agent_hash(agent_id: &str) -> u64 {
    let hash = blake3::hash(agent_id.as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(prefix)
}

/// How many of an agent's first uses of a system landed among systems its peers (the
/// other agents of its owner) already used, and how many outside them. Kept with the
/// agent so that the fleet-wide share is rebuilt exactly on start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounts {
    /// First uses of a system a peer already used.
    pub inside: u32,
    /// First uses of a system no peer used.
    pub outside: u32,
}

/// How a system relates to an agent's peers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerContext {
    /// Some other agent of the same owner has used the system.
    pub peers_use_it: bool,
    /// The share of the fleet's first uses that land outside the peers' systems.
    pub outside_share: f64,
}

impl PeerContext {
    /// The probability that a first use lands where this one did (inside or outside
    /// the peers' systems): the factor on `new_system`'s novelty rate.
    pub fn weight(&self) -> f64 {
        if self.peers_use_it {
            1.0 - self.outside_share
        } else {
            self.outside_share
        }
    }
}

impl PeerIndex {
    /// Adds a stored agent's learned systems under its owner, and its first uses
    /// (the engine does this for every stored agent on start).
    pub fn add_agent(&mut self, agent_id: &str, baseline: &Baseline, counts: &PeerCounts) {
        if let Some(owner) = &baseline.owner {
            let agent = agent_hash(agent_id);
            for seen in baseline.systems.iter() {
                self.note(owner, &seen.name, agent, seen.first_ms);
            }
        }
        self.inside += u64::from(counts.inside);
        self.outside += u64::from(counts.outside);
    }

    /// Takes a stored agent's first uses out of the fleet-wide share (before its state is
    /// replaced by a restored one, whose counts [`PeerIndex::add_agent`] then adds).
    /// Its systems stay: the earliest users of a system only ever get earlier.
    pub fn remove_counts(&mut self, counts: &PeerCounts) {
        self.inside = self.inside.saturating_sub(u64::from(counts.inside));
        self.outside = self.outside.saturating_sub(u64::from(counts.outside));
    }

    /// The peer context of `system` for `agent_id` of `owner` at `time_ms` (`None`
    /// without an owner, or while the fleet has made too few first uses to say).
    pub fn context(
        &self,
        owner: &str,
        system: &str,
        agent_id: &str,
        time_ms: i64,
    ) -> Option<PeerContext> {
        let systems = self.by_owner.get(owner)?;
        let total = self.inside + self.outside;
        if total < 20 {
            return None;
        }
        Some(PeerContext {
            peers_use_it: systems
                .get(system)
                .is_some_and(|users| users.known_before(agent_hash(agent_id), time_ms)),
            outside_share: (self.outside as f64 + 1.0) / (total as f64 + 2.0),
        })
    }

    /// Records that `agent_id` of `owner` learned `system`, which was new to it, at
    /// `time_ms`, and counts it in `counts`, the agent's own tally (stored with the
    /// agent).
    pub fn record_first_use(
        &mut self,
        owner: &str,
        system: &str,
        agent_id: &str,
        time_ms: i64,
        counts: &mut PeerCounts,
    ) {
        let agent = agent_hash(agent_id);
        let inside = self
            .by_owner
            .get(owner)
            .and_then(|systems| systems.get(system))
            .is_some_and(|users| users.known_before(agent, time_ms));
        if inside {
            self.inside += 1;
            counts.inside = counts.inside.saturating_add(1);
        } else {
            self.outside += 1;
            counts.outside = counts.outside.saturating_add(1);
        }
        if self.note(owner, system, agent, time_ms) {
            self.unshared.queue(|| PeerUse {
                owner: owner.to_owned(),
                system: system.to_owned(),
                agent_id: agent_id.to_owned(),
                first_ms: time_ms,
            });
        }
    }

    /// Merges a first use another instance learned.
    pub fn merge(&mut self, use_: &PeerUse) {
        self.note(
            &use_.owner,
            &use_.system,
            agent_hash(&use_.agent_id),
            use_.first_ms,
        );
    }

    /// Turns sharing on: from now on first uses that change the index are queued for
    /// [`PeerIndex::take_unshared`] (those that do not change it tell the group
    /// nothing).
    pub fn share(&mut self) {
        self.unshared.open();
    }

    /// The first uses learned since the last call, to publish.
    pub fn take_unshared(&mut self) -> Vec<PeerUse> {
        self.unshared.take()
    }

    /// Adds a first use; returns true if the index changed.
    fn note(&mut self, owner: &str, system: &str, agent: u64, time_ms: i64) -> bool {
        let systems = match self.by_owner.get_mut(owner) {
            Some(systems) => systems,
            None => self.by_owner.entry(CompactString::new(owner)).or_default(),
        };
        if let Some(users) = systems.get_mut(system) {
            return users.note(time_ms, agent);
        }
        if systems.len() >= MAX_SYSTEMS_PER_OWNER {
            return false;
        }
        let mut users = FirstUsers::default();
        users.note(time_ms, agent);
        systems.insert(CompactString::new(system), users);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index whose fleet has made enough first uses (20, all inside) to give context.
    fn seasoned() -> (PeerIndex, PeerCounts) {
        let index = PeerIndex {
            inside: 20,
            ..PeerIndex::default()
        };
        let counts = PeerCounts {
            inside: 20,
            ..PeerCounts::default()
        };
        (index, counts)
    }

    #[test]
    fn systems_outside_the_team_weigh_by_how_rarely_first_uses_go_there() {
        let mut index = PeerIndex::default();
        let mut counts = PeerCounts::default();
        index.record_first_use("ana", "wiki", "agent-0", 0, &mut counts);
        for agent in 1..18 {
            index.record_first_use("ana", "wiki", &format!("agent-{agent}"), 10, &mut counts);
        }
        index.record_first_use("ana", "crm", "agent-1", 20, &mut counts);
        index.record_first_use("ana", "email", "agent-1", 20, &mut counts);
        assert_eq!((counts.inside, counts.outside), (17, 3));
        let inside = index.context("ana", "wiki", "agent-99", 30).unwrap();
        let outside = index.context("ana", "hr.payroll", "agent-99", 30).unwrap();
        assert!(inside.peers_use_it && !outside.peers_use_it);
        assert!((outside.weight() - 4.0 / 22.0).abs() < 1e-9);
        assert!(inside.weight() > 0.8);
        assert_eq!(index.context("bob", "wiki", "agent-99", 30), None);
    }

    #[test]
    fn only_another_agent_that_used_the_system_earlier_makes_it_the_teams() {
        let (mut index, mut counts) = seasoned();
        index.record_first_use("ana", "wiki", "a", 100, &mut counts);
        // The agent's own first use (say, published before a crash and merged back
        // after it, then replayed) is not its peers'; a use after it is a system it
        // knew (re-learned after its bounded table evicted it).
        assert!(!index.context("ana", "wiki", "a", 100).unwrap().peers_use_it);
        assert!(index.context("ana", "wiki", "a", 200).unwrap().peers_use_it);
        // A peer's use counts from its time on, not before.
        assert!(!index.context("ana", "wiki", "b", 50).unwrap().peers_use_it);
        assert!(index.context("ana", "wiki", "b", 100).unwrap().peers_use_it);
        index.record_first_use("ana", "wiki", "b", 150, &mut counts);
        assert_eq!((counts.inside, counts.outside), (21, 1));
        index.record_first_use("ana", "crm", "c", 150, &mut counts);
        index.record_first_use("ana", "crm", "d", 150, &mut counts);
        assert_eq!(
            (counts.inside, counts.outside),
            (22, 2),
            "a peer's use at the same time counts, the agent's own does not"
        );
    }

    #[test]
    fn first_uses_merged_in_any_order_give_the_same_index() {
        let uses: Vec<PeerUse> = [("a", 300), ("b", 100), ("c", 200), ("a", 50), ("b", 400)]
            .iter()
            .map(|&(agent, first_ms)| PeerUse {
                owner: "ana".into(),
                system: "wiki".into(),
                agent_id: agent.into(),
                first_ms,
            })
            .collect();
        let verdicts = |order: &[usize]| {
            let (mut index, _) = seasoned();
            for &i in order {
                index.merge(&uses[i]);
            }
            ["a", "b", "c", "d"]
                .iter()
                .flat_map(|agent| [49, 50, 99, 100, 199, 200, 1_000].map(|t| (agent, t)))
                .map(|(agent, t)| index.context("ana", "wiki", agent, t).unwrap().peers_use_it)
                .collect::<Vec<bool>>()
        };
        let forward = verdicts(&[0, 1, 2, 3, 4]);
        assert_eq!(forward, verdicts(&[4, 3, 2, 1, 0]));
        assert_eq!(forward, verdicts(&[2, 0, 4, 1, 3, 3, 0]));
        // The two earliest users are a (50) and b (100): c sees a peer from 50 on, a
        // knows it after its own first use at 50.
        let (mut index, _) = seasoned();
        uses.iter().for_each(|u| index.merge(u));
        assert!(index.context("ana", "wiki", "c", 50).unwrap().peers_use_it);
        assert!(!index.context("ana", "wiki", "a", 50).unwrap().peers_use_it);
        assert!(index.context("ana", "wiki", "a", 51).unwrap().peers_use_it);
    }

    #[test]
    fn only_first_uses_that_change_the_index_are_shared() {
        let (mut index, mut counts) = seasoned();
        index.record_first_use("ana", "wiki", "a", 10, &mut counts);
        index.share();
        index.record_first_use("ana", "wiki", "b", 20, &mut counts);
        index.record_first_use("ana", "wiki", "c", 30, &mut counts);
        index.record_first_use("ana", "crm", "c", 30, &mut counts);
        let shared: Vec<(String, String)> = index
            .take_unshared()
            .into_iter()
            .map(|u| (u.system, u.agent_id))
            .collect();
        assert_eq!(
            shared,
            [("wiki".into(), "b".into()), ("crm".into(), "c".into())]
        );
        assert!(index.take_unshared().is_empty());
    }
}
