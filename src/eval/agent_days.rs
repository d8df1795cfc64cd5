//! Agent-days: how much fleet activity a run covered.
//!
//! False alerts per 10,000 events favour chatty fleets: a thousand quiet agents each
//! flagged once a day look fine per event and are unbearable for their owners. Counting
//! the (agent, day) pairs with any activity gives the rate an owner feels.

use hashbrown::{HashMap, HashSet};

use crate::model::time::DAY_MS;

/// Counts distinct (agent, UTC day) pairs with at least one event.
///
/// `replay` notes every event here, so this is on its hot path: one lookup of the agent,
/// and the set of its days only touched when an event is on another day than the
/// agent's previous one (events mostly come in time order).
#[derive(Debug, Clone, Default)]
pub struct AgentDays {
    days: HashMap<String, Days>,
    count: u64,
}

#[derive(Debug, Clone)]
struct Days {
    last: i64,
    all: HashSet<i64>,
}

impl AgentDays {
    /// Notes an event of `agent_id` at `time_ms`.
    pub fn observe(&mut self, agent_id: &str, time_ms: i64) {
        let day = time_ms.div_euclid(DAY_MS);
        let fresh = match self.days.get_mut(agent_id) {
            Some(days) if days.last == day => false,
            Some(days) => {
                days.last = day;
                days.all.insert(day)
            }
            None => {
                self.days.insert(
                    agent_id.to_owned(),
                    Days {
                        last: day,
                        all: HashSet::from_iter([day]),
                    },
                );
                true
            }
        };
        self.count += u64::from(fresh);
    }

    /// Distinct (agent, day) pairs seen.
    pub fn count(&self) -> u64 {
        self.count
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
