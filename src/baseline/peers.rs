//! Which systems each owner's agents use: the peer context of `new_system`.
//!
//! A system that is new to an agent but used by its peers (the other agents of the
//! same accountable owner) is less surprising than one none of them touches: teams
//! share tools, and an agent picking up its team's wiki is ordinary. How much less is
//! learned from the fleet itself: of all the first uses agents have made, the share
//! that landed outside their peers' systems ([`PeerIndex::outside_share`]). Like the
//! credential ledger it holds only what baselines learned, so it is rebuilt from the
//! state store on start and needs no storage of its own.
//!
//! In a group, an agent's peers may live on other instances, so the service shares
//! which systems each owner's agents use through a compacted topic
//! ([`crate::kafka::shared_topic`]); merging is a set union. The share of first uses
//! that land outside the peers' systems stays each instance's own estimate: agents are
//! spread over partitions by a hash of their id, so each instance's first uses are a
//! random sample of the fleet's.

use compact_str::CompactString;
use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

use super::Baseline;

/// Most systems remembered per owner (beyond it, further systems count as unused).
const MAX_SYSTEMS_PER_OWNER: usize = 4_096;

/// Owner → systems their agents have learned, and where first uses land.
///
/// Everything here is a function of the stored agents (their owners, systems and
/// [`PeerCounts`]), so a restarted engine rebuilds exactly the index an
/// uninterrupted one holds, and decisions do not depend on when the process started.
#[derive(Debug, Default)]
pub struct PeerIndex {
    by_owner: HashMap<CompactString, HashSet<CompactString>>,
    /// Systems newly learned here and not yet handed out for sharing (`None`: not
    /// shared).
    unshared: Option<Vec<PeerSystem>>,
    /// First uses of a system that some peer already used.
    inside: u64,
    /// First uses of a system no peer used.
    outside: u64,
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

/// A system an owner's agents use, as instances share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSystem {
    /// The accountable owner.
    pub owner: String,
    /// A system one of the owner's agents learned.
    pub system: String,
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
    pub fn add_agent(&mut self, baseline: &Baseline, counts: &PeerCounts) {
        if let Some(owner) = &baseline.owner {
            for seen in baseline.systems.iter() {
                self.add(owner, &seen.name);
            }
        }
        self.inside += u64::from(counts.inside);
        self.outside += u64::from(counts.outside);
    }

    /// The peer context of `system` for an agent of `owner` (`None` without an owner,
    /// or while the fleet has made too few first uses to say).
    pub fn context(&self, owner: &str, system: &str) -> Option<PeerContext> {
        let systems = self.by_owner.get(owner)?;
        let total = self.inside + self.outside;
        if total < 20 {
            return None;
        }
        Some(PeerContext {
            peers_use_it: systems.contains(system),
            outside_share: (self.outside as f64 + 1.0) / (total as f64 + 2.0),
        })
    }

    /// Records that an agent of `owner` learned `system`, which was new to it, and
    /// counts it in `counts`, the agent's own tally (stored with the agent).
    pub fn record_first_use(&mut self, owner: &str, system: &str, counts: &mut PeerCounts) {
        let inside = self
            .by_owner
            .get(owner)
            .is_some_and(|systems| systems.contains(system));
        if inside {
            self.inside += 1;
            counts.inside = counts.inside.saturating_add(1);
        } else {
            self.outside += 1;
            counts.outside = counts.outside.saturating_add(1);
        }
        self.add(owner, system);
    }

    fn add(&mut self, owner: &str, system: &str) {
        let systems = match self.by_owner.get_mut(owner) {
            Some(systems) => systems,
            None => self.by_owner.entry(CompactString::new(owner)).or_default(),
        };
        if systems.len() < MAX_SYSTEMS_PER_OWNER && !systems.contains(system) {
            systems.insert(CompactString::new(system));
            if let Some(unshared) = &mut self.unshared {
                unshared.push(PeerSystem {
                    owner: owner.to_owned(),
                    system: system.to_owned(),
                });
            }
        }
    }

    /// Turns sharing on: every system known so far, and from now on each one learned,
    /// is queued for [`PeerIndex::take_unshared`].
    pub fn share(&mut self) {
        let known = self.by_owner.iter().flat_map(|(owner, systems)| {
            systems.iter().map(move |system| PeerSystem {
                owner: owner.to_string(),
                system: system.to_string(),
            })
        });
        self.unshared = Some(known.collect());
    }

    /// The systems learned since the last call, to publish.
    pub fn take_unshared(&mut self) -> Vec<PeerSystem> {
        self.unshared
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Merges a system another instance's agent learned (not a first use here).
    pub fn merge(&mut self, shared: &PeerSystem) {
        let unshared = self.unshared.take();
        self.add(&shared.owner, &shared.system);
        self.unshared = unshared;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_outside_the_team_weigh_by_how_rarely_first_uses_go_there() {
        let mut index = PeerIndex::default();
        let mut counts = PeerCounts::default();
        index.add("ana", "wiki");
        for _ in 0..18 {
            index.record_first_use("ana", "wiki", &mut counts);
        }
        index.record_first_use("ana", "crm", &mut counts);
        index.record_first_use("ana", "email", &mut counts);
        assert_eq!((counts.inside, counts.outside), (18, 2));
        let inside = index.context("ana", "wiki").unwrap();
        let outside = index.context("ana", "hr.payroll").unwrap();
        assert!(inside.peers_use_it && !outside.peers_use_it);
        assert!((outside.weight() - 3.0 / 22.0).abs() < 1e-9);
        assert!(inside.weight() > 0.8);
        assert_eq!(index.context("bob", "wiki"), None);
    }

    #[test]
    fn peers_on_another_instance_count_once_shared() {
        let mut here = PeerIndex::default();
        let mut there = PeerIndex::default();
        here.share();
        there.share();
        let mut counts = PeerCounts::default();
        here.record_first_use("ana", "wiki", &mut counts);
        here.record_first_use("ana", "wiki", &mut counts);
        let published = here.take_unshared();
        assert_eq!(published.len(), 1, "one record per system learned");
        for shared in &published {
            there.merge(shared);
        }
        assert!(
            there.take_unshared().is_empty(),
            "merged systems are not re-published"
        );
        there.record_first_use("ana", "wiki", &mut counts);
        assert_eq!(counts.inside, 2, "the other instance's agent is a peer");
    }
}
