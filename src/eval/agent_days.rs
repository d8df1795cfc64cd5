//! Agent-days: how much fleet activity a run covered.
//!
//! False alerts per 10,000 events favour chatty fleets: a thousand quiet agents each
//! flagged once a day look fine per event and are unbearable for their owners. Counting
//! the (agent, day) pairs with any activity gives the rate an owner feels.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashSet};

use crate::model::time::DAY_MS;

/// Counts distinct (agent, UTC day) pairs with at least one event.
///
/// `replay` notes every event here, so this is on its hot path: one lookup of the agent,
/// and the set of pairs only touched when an event is on another day than the agent's
/// previous one (events mostly come in time order). It holds every agent a run has
/// seen, however few events each had, so an agent is a 64-bit hash of its id rather
/// than its name and a set of its own: about 50 bytes an agent where a name and a set
/// per agent took 150 (a replay of a million agents held 150 MB for this count alone).
/// Two of a million agents share a hash about once in 40 million runs, which would
/// merge their days in the count: a report figure, not a decision.
#[derive(Debug, Clone, Default)]
pub struct AgentDays {
    hasher: DefaultHashBuilder,
    /// Each agent's latest day.
    latest: HashMap<u64, i64>,
    /// Every (agent, day) pair seen.
    pairs: HashSet<(u64, i64)>,
}

impl AgentDays {
    /// Notes an event of `agent_id` at `time_ms`.
    pub fn observe(&mut self, agent_id: &str, time_ms: i64) {
        let day = time_ms.div_euclid(DAY_MS);
        let agent = self.hasher.hash_one(agent_id);
        let latest = self.latest.entry(agent).or_insert(i64::MIN);
        if *latest != day {
            *latest = day;
            self.pairs.insert((agent, day));
        }
    }

    /// Distinct (agent, day) pairs seen.
    pub fn count(&self) -> u64 {
        self.pairs.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_agent_once_per_day() {
        let mut days = AgentDays::default();
        for (agent, t) in [
            ("a", 0),
            ("a", 1_000),
            ("b", 5),
            ("a", DAY_MS),
            ("a", -1),
            ("a", 2_000),
            ("a", DAY_MS + 1),
        ] {
            days.observe(agent, t);
        }
        assert_eq!(
            days.count(),
            4,
            "a on days -1, 0 and 1 (each again after another day); b on day 0"
        );
    }
}
