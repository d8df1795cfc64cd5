//! Fleet context: the same deviation on many agents at once is one fleet event.
//!
//! A new system rolled out to half the fleet is a first use for every agent that gets
//! it; an outage of a shared system is a burst of failures for every agent that calls
//! it. Judged agent by agent, each is an anomaly, and a rollout becomes thousands of
//! alerts and commands against healthy agents. Judged as a fleet, it is one alert that
//! names the system, the number of agents and a sample of them, with no per-agent
//! commands, while agents that deviate in any other way still alert on their own.
//!
//! The context is kept per (pattern, system) over a sliding window of event time. It
//! is not stored with the agents: it describes the last hours of traffic. `replay`
//! refills it within one window after a restart (the first agents of a pattern that
//! straddles the restart alert individually, as they would at its start); `run` reloads
//! it from the shared topic below.
//!
//! In a group, each instance sees only its partitions' agents, and a rollout split
//! across four instances would reach the agent count on none of them. The service
//! therefore shares every sighting (an agent showing a pattern, and until when the
//! pattern's fleet alert covers it) through a compacted topic
//! ([`crate::kafka::fleet_topic`]); each instance merges the others' into its context.
//! Merging keeps each agent's latest time and the latest cover, so the order sightings
//! arrive in does not matter. The context then counts the fleet's agents, and a fleet
//! alert one instance announced covers the pattern on the others (two instances that
//! announce within the same moment may both alert: the topic is not a lock). The share
//! of the fleet a rollout must reach is of the whole fleet's agents first seen by the
//! event, shared the same way ([`crate::pipeline::FleetRoster`]).

use std::collections::HashMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::detect::FleetScope;
use crate::model::time::{HOUR_MS, MINUTE_MS};
use crate::outbox::Outbox;

/// When a pattern counts as fleet-wide.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetParams {
    /// How close in time first uses of one system must be (a rollout takes hours).
    pub novelty_window_ms: i64,
    /// How close in time failure bursts on one system must be (an outage is now).
    pub failures_window_ms: i64,
    /// Fewest distinct agents that make a fleet pattern.
    pub min_agents: usize,
    /// For first uses, also at least this share of the known fleet: in a large fleet a
    /// few agents branching out to one popular system on the same day is chance, not a
    /// rollout.
    pub novelty_min_share: f64,
}

impl Default for FleetParams {
    fn default() -> Self {
        FleetParams {
            novelty_window_ms: 24 * HOUR_MS,
            failures_window_ms: 30 * MINUTE_MS,
            min_agents: 3,
            novelty_min_share: 0.05,
        }
    }
}

/// How one agent's finding relates to the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetVerdict {
    /// Not (yet) a fleet pattern: the agent's own anomaly.
    Individual,
    /// Part of a fleet pattern.
    Fleet {
        /// The pattern.
        scope: FleetScope,
        /// The window the agents fell in.
        window_ms: i64,
        /// True for the finding that should carry the fleet alert (the first one that
        /// makes the pattern fleet-wide, then at most once per window).
        announce: bool,
        /// Distinct agents showing the pattern within the window.
        agents: usize,
        /// Up to five of them, earliest first.
        sample: Vec<String>,
    },
}

#[derive(Debug, Default)]
struct Pattern {
    /// Agents showing it, in the order they were first seen.
    agents: Vec<Shown>,
    /// The fleet alert this engine announced: from when, and until when it covers the
    /// pattern (for events in any order, as partitions interleave).
    announced: (i64, i64),
    /// The hull of the covers other instances (or this one's previous run) announced,
    /// which cover only events after their announcement.
    shared_cover: (i64, i64),
}

/// When one agent showed a pattern: the first and the latest time known.
///
/// Both, because a shared context can know of sightings *later* than the event being
/// decided: an instance that restarts after a crash replays events its previous run
/// had already published sightings for. Counting an agent only from its first
/// sighting on, and a fleet alert's cover only from the time it was announced, keeps a
/// replay's verdicts those of the first run.
#[derive(Debug)]
struct Shown {
    agent: CompactString,
    first_ms: i64,
    last_ms: i64,
}

impl Pattern {
    fn covers(&self, now_ms: i64) -> bool {
        // A shared cover starts after its announcing event, which a replay announces
        // again (with the same alert id).
        let (from, until) = self.shared_cover;
        now_ms < self.announced.1 || (from < now_ms && now_ms < until)
    }

    /// Covers the pattern from `now_ms` for `window_ms` (extending a live cover).
    fn announce(&mut self, now_ms: i64, window_ms: i64) {
        if self.announced.1 <= now_ms {
            self.announced.0 = now_ms;
        }
        self.announced.1 = self.announced.1.max(now_ms + window_ms);
    }

    /// Adds a shared cover `[from_ms, until_ms)` (one interval: the union's hull).
    fn merge_cover(&mut self, from_ms: i64, until_ms: i64) {
        let (from, until) = &mut self.shared_cover;
        if *until <= *from {
            (*from, *until) = (from_ms, until_ms);
        } else {
            *from = (*from).min(from_ms);
            *until = (*until).max(until_ms);
        }
    }

    /// Notes that `agent` showed the pattern between `first_ms` and `last_ms`.
    fn show(&mut self, agent: &str, first_ms: i64, last_ms: i64) {
        match self.agents.iter_mut().find(|s| s.agent == agent) {
            Some(shown) => {
                shown.first_ms = shown.first_ms.min(first_ms);
                shown.last_ms = shown.last_ms.max(last_ms);
            }
            None => {
                if self.agents.len() >= MAX_AGENTS {
                    self.agents.remove(0);
                }
                self.agents.push(Shown {
                    agent: CompactString::new(agent),
                    first_ms,
                    last_ms,
                });
            }
        }
    }
}

/// Most agents remembered per pattern (the count saturates there).
const MAX_AGENTS: usize = 512;
/// Agents named on a fleet alert.
const SAMPLE: usize = 5;

/// Recent deviations per (pattern, system) across all agents of this engine.
#[derive(Debug, Default)]
pub struct FleetContext {
    params: FleetParams,
    patterns: HashMap<(FleetScope, CompactString), Pattern>,
    observations: u64,
    /// Sightings made here and not yet handed out for sharing.
    unshared: Outbox<FleetSighting>,
}

/// What instances share about the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum FleetRecord {
    /// An agent showing a pattern.
    Sighting(FleetSighting),
    /// An agent's first use of a system (the peer context of `new_system`).
    PeerUse(crate::baseline::PeerUse),
    /// An agent of the fleet and when it was first seen (the fleet size a rollout's
    /// share is taken of: see [`crate::pipeline::FleetRoster`]).
    Joined(crate::pipeline::AgentJoined),
}

/// One agent showing a fleet pattern, as instances share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSighting {
    /// The pattern.
    pub scope: FleetScope,
    /// The system it is on.
    pub system: String,
    /// The agent that showed it.
    pub agent_id: String,
    /// When (event time, milliseconds since the Unix epoch).
    pub time_ms: i64,
    /// From when the pattern's fleet alert covers it.
    pub announced_from_ms: i64,
    /// Until when it covers it (not after `announced_from_ms`: not announced).
    pub announced_until_ms: i64,
}

impl FleetContext {
    /// An empty context.
    pub fn new(params: FleetParams) -> Self {
        FleetContext {
            params,
            ..FleetContext::default()
        }
    }

    /// Records that `agent` shows `scope` on `system` at `now_ms`, in a fleet of
    /// `fleet_size` known agents, and says whether that is now a fleet pattern.
    pub fn observe(
        &mut self,
        scope: FleetScope,
        system: &str,
        agent: &str,
        now_ms: i64,
        fleet_size: usize,
    ) -> FleetVerdict {
        let (window, needed) = match scope {
            FleetScope::Novelty => (
                self.params.novelty_window_ms,
                self.params
                    .min_agents
                    .max((self.params.novelty_min_share * fleet_size as f64).ceil() as usize),
            ),
            FleetScope::Failures => (self.params.failures_window_ms, self.params.min_agents),
        };
        self.observations += 1;
        if self.observations % 4_096 == 0 {
            self.forget_before(now_ms - window.max(self.params.novelty_window_ms));
        }
        let pattern = self
            .patterns
            .entry((scope, CompactString::new(system)))
            .or_default();
        pattern.agents.retain(|s| now_ms - s.last_ms <= window);
        pattern.show(agent, now_ms, now_ms);
        let present = || pattern.agents.iter().filter(|s| s.first_ms <= now_ms);
        let agents = present().count();
        let fleet_wide = agents >= needed;
        // One alert per episode: a pattern that keeps going stays covered, and is
        // announced again only after it went quiet for a whole window.
        let announce = fleet_wide && !pattern.covers(now_ms);
        let sample = present()
            .take(SAMPLE)
            .map(|s| s.agent.to_string())
            .collect();
        if fleet_wide {
            pattern.announce(now_ms, window);
        }
        self.unshared.queue(|| FleetSighting {
            scope,
            system: system.to_owned(),
            agent_id: agent.to_owned(),
            time_ms: now_ms,
            announced_from_ms: pattern.announced.0,
            announced_until_ms: pattern.announced.1,
        });
        if !fleet_wide {
            return FleetVerdict::Individual;
        }
        FleetVerdict::Fleet {
            scope,
            window_ms: window,
            announce,
            agents,
            sample,
        }
    }

    /// Turns sharing on: from now on sightings are queued for
    /// [`FleetContext::take_unshared`].
    pub fn share(&mut self) {
        self.unshared.open();
    }

    /// The sightings made since the last call, to publish.
    pub fn take_unshared(&mut self) -> Vec<FleetSighting> {
        self.unshared.take()
    }

    /// Merges a sighting another instance made: the agent counts towards the pattern
    /// (at the later of the two times) and the later cover wins. Sightings older than
    /// the pattern's window are dropped by the next observation of it.
    pub fn merge_sighting(&mut self, sighting: &FleetSighting) {
        let pattern = self
            .patterns
            .entry((sighting.scope, CompactString::new(&sighting.system)))
            .or_default();
        if sighting.announced_until_ms > sighting.announced_from_ms {
            pattern.merge_cover(sighting.announced_from_ms, sighting.announced_until_ms);
        }
        pattern.show(&sighting.agent_id, sighting.time_ms, sighting.time_ms);
    }

    /// Drops patterns with no agent since `cutoff_ms`, so the map stays as small as the
    /// fleet's recent deviations.
    fn forget_before(&mut self, cutoff_ms: i64) {
        self.patterns
            .retain(|_, p| p.agents.iter().any(|s| s.last_ms >= cutoff_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_becomes_one_fleet_pattern_after_enough_agents() {
        let mut fleet = FleetContext::new(FleetParams::default());
        let t = 1_000 * HOUR_MS;
        let mut verdicts = Vec::new();
        for i in 0..10 {
            verdicts.push(fleet.observe(
                FleetScope::Novelty,
                "ai.gateway",
                &format!("agent-{i}"),
                t + i * MINUTE_MS,
                40,
            ));
        }
        assert_eq!(verdicts[0], FleetVerdict::Individual);
        assert_eq!(verdicts[1], FleetVerdict::Individual);
        let announced: Vec<usize> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v, FleetVerdict::Fleet { announce: true, .. }))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(announced, vec![2], "announced once, by the third agent");
        assert!(matches!(
            &verdicts[9],
            FleetVerdict::Fleet { agents: 10, sample, .. } if sample.len() == 5
        ));
    }

    #[test]
    fn patterns_on_other_systems_or_outside_the_window_stay_individual() {
        let mut fleet = FleetContext::new(FleetParams::default());
        let t = 1_000 * HOUR_MS;
        fleet.observe(FleetScope::Failures, "crm", "a", t, 10);
        fleet.observe(FleetScope::Failures, "crm", "b", t, 10);
        assert_eq!(
            fleet.observe(FleetScope::Failures, "billing", "c", t, 10),
            FleetVerdict::Individual
        );
        assert_eq!(
            fleet.observe(FleetScope::Failures, "crm", "d", t + HOUR_MS, 10),
            FleetVerdict::Individual,
            "the first two bursts are outside the 30-minute window"
        );
    }

    #[test]
    fn instances_that_share_sightings_count_the_fleet_and_announce_once() {
        let t = 1_000 * HOUR_MS;
        let mut one = FleetContext::new(FleetParams::default());
        let mut two = FleetContext::new(FleetParams::default());
        one.share();
        two.share();
        // Two agents on instance one, then a third on instance two: alone, neither
        // instance reaches three agents.
        one.observe(FleetScope::Failures, "crm", "a", t, 10);
        one.observe(FleetScope::Failures, "crm", "b", t + 1, 10);
        for record in one.take_unshared() {
            two.merge_sighting(&record);
        }
        let third = two.observe(FleetScope::Failures, "crm", "c", t + 2, 10);
        assert!(
            matches!(
                third,
                FleetVerdict::Fleet {
                    agents: 3,
                    announce: true,
                    ..
                }
            ),
            "{third:?}"
        );
        for record in two.take_unshared() {
            one.merge_sighting(&record);
        }
        let fourth = one.observe(FleetScope::Failures, "crm", "d", t + 3, 10);
        assert!(
            matches!(
                fourth,
                FleetVerdict::Fleet {
                    agents: 4,
                    announce: false,
                    ..
                }
            ),
            "instance two's announcement covers instance one: {fourth:?}"
        );
        let mut alone = FleetContext::new(FleetParams::default());
        alone.observe(FleetScope::Failures, "crm", "a", t, 10);
        alone.observe(FleetScope::Failures, "crm", "b", t + 1, 10);
        assert_eq!(
            alone.observe(FleetScope::Failures, "other", "c", t + 2, 10),
            FleetVerdict::Individual
        );
    }

    #[test]
    fn sightings_later_than_the_event_decided_do_not_count_yet() {
        // An instance restarted after a crash replays events its previous run had
        // already published sightings (and an announcement) for.
        let t = 1_000 * HOUR_MS;
        let mut first_run = FleetContext::new(FleetParams::default());
        first_run.share();
        let verdicts: Vec<FleetVerdict> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                first_run.observe(
                    FleetScope::Failures,
                    "crm",
                    agent,
                    t + i as i64 * MINUTE_MS,
                    10,
                )
            })
            .collect();
        let mut replay = FleetContext::new(FleetParams::default());
        for record in first_run.take_unshared() {
            replay.merge_sighting(&record);
        }
        for (i, agent) in ["a", "b", "c"].iter().enumerate() {
            let again = replay.observe(
                FleetScope::Failures,
                "crm",
                agent,
                t + i as i64 * MINUTE_MS,
                10,
            );
            assert_eq!(again, verdicts[i], "{agent}");
        }
        assert!(matches!(
            verdicts[2],
            FleetVerdict::Fleet { announce: true, .. }
        ));
    }

    #[test]
    fn the_same_agent_counts_once() {
        let mut fleet = FleetContext::new(FleetParams::default());
        for minute in 0..10 {
            assert_eq!(
                fleet.observe(FleetScope::Novelty, "wiki", "a", minute * MINUTE_MS, 10),
                FleetVerdict::Individual
            );
        }
    }
}
