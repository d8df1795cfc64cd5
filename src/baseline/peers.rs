//! Which systems each owner's agents use: the peer context of `new_system`.
//!
//! A system that is new to an agent but used by its peers (the other agents of the
//! same accountable owner) is less surprising than one none of them touches: teams
//! share tools, and an agent picking up its team's wiki is ordinary. How much less is
//! learned from the fleet itself: of all the first uses agents have made, the share
//! that landed outside their peers' systems ([`PeerIndex::outside_share`]). Like the
//! credential ledger it holds only what baselines learned, so it is rebuilt from the
//! state store on start and needs no storage of its own.

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

    /// Takes a stored agent's first uses out of the fleet-wide share (before its state is
    /// replaced by a restored one, whose counts [`PeerIndex::add_agent`] then adds).
    /// Its systems stay: an owner's systems only ever grow.
    pub fn remove_counts(&mut self, counts: &PeerCounts) {
        self.inside = self.inside.saturating_sub(u64::from(counts.inside));
        self.outside = self.outside.saturating_sub(u64::from(counts.outside));
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
        }
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
}
