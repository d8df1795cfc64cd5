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
//! ([`crate::config::fleet_topic`]); each instance merges the others' into its context.
//! Merging keeps each agent's stretch of sightings and every cover, so the order
//! sightings arrive in matters only where a sighting more than a window after an
//! agent's latest starts a new stretch. The context then counts the fleet's agents, and a fleet
//! alert one instance announced covers the pattern on the others (two instances that
//! announce within the same moment may both alert: the topic is not a lock). The share
//! of the fleet a rollout must reach is of the whole fleet's agents first seen by the
//! event, shared the same way ([`crate::pipeline::FleetRoster`]).

use std::collections::HashMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::detect::FleetScope;
use crate::model::time::{HOUR_MS, MINUTE_MS};
use crate::model::Alert;
use crate::outbox::Outbox;
use crate::pipeline::ids::episode_slot;

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
    /// How many windows a pattern must go without a fleet-wide sighting before it is
    /// announced again. More than one: the members of a group learn of each other's
    /// sightings a commit later, which on a backlog spans minutes of event time, and a
    /// member that missed the latest ones would announce a running episode again.
    pub quiet_windows: i64,
}

impl Default for FleetParams {
    fn default() -> Self {
        FleetParams {
            novelty_window_ms: 24 * HOUR_MS,
            failures_window_ms: 30 * MINUTE_MS,
            min_agents: 3,
            novelty_min_share: 0.05,
            quiet_windows: 2,
        }
    }
}

impl FleetParams {
    /// Fewest agents that make a `scope` pattern fleet-wide in a fleet of `fleet_size`.
    fn needed(&self, scope: FleetScope, fleet_size: usize) -> usize {
        match scope {
            FleetScope::Novelty => self
                .min_agents
                .max((self.novelty_min_share * fleet_size as f64).ceil() as usize),
            FleetScope::Failures => self.min_agents,
        }
    }

    /// How close in time the agents of a `scope` pattern must be.
    fn window_ms(&self, scope: FleetScope) -> i64 {
        match scope {
            FleetScope::Novelty => self.novelty_window_ms,
            FleetScope::Failures => self.failures_window_ms,
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
        /// makes the pattern fleet-wide, then again only after the pattern went
        /// `quiet_windows` without a fleet-wide sighting).
        announce: bool,
        /// The name of the pattern's episode (the cover that has lasted since it became
        /// fleet-wide, here or on another instance): the first sighting of its
        /// earliest agent. The fleet alert's id carries it, with the pattern and the
        /// system, so instances of a group that announce one episode at different
        /// events, having learnt of each other's sightings late, publish one id.
        episode_ms: i64,
        /// How long the pattern must go without a fleet-wide sighting before it is
        /// announced again, which also keeps its episodes' names at least this far
        /// apart: the fleet alert's id counts the episode in slots of it (see
        /// [`crate::pipeline::ids::fleet_alert_id`]).
        hold_ms: i64,
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
    /// pattern (for events in any order, as partitions interleave), and its episode's
    /// name (see [`Pattern::episode_of`]).
    announced: Episode,
    /// The hull of the covers other instances (or this one's previous run) announced,
    /// which cover only events after their announcement.
    shared_cover: (i64, i64),
    /// The latest of those covers one by one, each with its episode's name: an
    /// instance that announces late, inside or right after another's cover, names
    /// that episode.
    shared_episodes: Vec<Episode>,
}

/// A fleet alert's cover and the name of the episode it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Episode {
    episode_ms: i64,
    from_ms: i64,
    until_ms: i64,
}

impl Episode {
    /// Whether an alert was announced at all (a cover ends after it starts).
    fn announced(&self) -> bool {
        self.until_ms > self.from_ms
    }
}

/// Most shared covers remembered per pattern (the latest ones).
const SHARED_EPISODES: usize = 8;

/// When one agent showed a pattern: the first and the latest time of its current
/// stretch (a sighting more than a window after the latest starts a new one).
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
    /// For an agent of this instance's own partitions, the fleet alert its stretch's
    /// first sighting would carry (see [`FleetContext::carry`]): the alert this
    /// instance owes the group if the episode turns out to be named by it.
    carrier: Option<Box<Alert>>,
}

impl Shown {
    /// Whether the agent counts towards the pattern at `at_ms`: from its stretch's
    /// first sighting until a window after its latest.
    fn counts_at(&self, at_ms: i64, window_ms: i64) -> bool {
        self.first_ms <= at_ms && at_ms <= self.last_ms + window_ms
    }
}

impl Pattern {
    /// The agents that count towards the pattern at `at_ms`, earliest first.
    fn present(&self, at_ms: i64, window_ms: i64) -> impl Iterator<Item = &Shown> {
        self.agents
            .iter()
            .filter(move |s| s.counts_at(at_ms, window_ms))
    }

    fn covers(&self, now_ms: i64) -> bool {
        // A shared cover starts after its announcing event, which a replay announces
        // again (with the same alert id).
        let (from, until) = self.shared_cover;
        now_ms < self.announced.until_ms || (from < now_ms && now_ms < until)
    }

    /// Whether every shared cover live at `now_ms` names its episode in a later slot of
    /// `hold_ms` than `episode_ms` (see [`crate::pipeline::ids::fleet_alert_id`]).
    ///
    /// Then the instance that announced it had not yet learnt of the sightings that
    /// began the episode, which this one knows: its fleet alert carries an id that a
    /// single instance, knowing them all, would not publish. This one announces the
    /// episode under the single instance's id too: a group that published only the
    /// late id would miss the single instance's alert, where one more id is a
    /// duplicate a consumer sees once.
    fn covered_only_later(&self, now_ms: i64, episode_ms: i64, hold_ms: i64) -> bool {
        self.live_covers_name_later(
            |e| e.from_ms < now_ms && now_ms < e.until_ms,
            episode_ms,
            hold_ms,
        )
    }

    /// Whether some shared cover is `live` and every live one names its episode in a
    /// later slot of `hold_ms` than `episode_ms`.
    fn live_covers_name_later(
        &self,
        live: impl Fn(&Episode) -> bool,
        episode_ms: i64,
        hold_ms: i64,
    ) -> bool {
        let slot = |ms: i64| episode_slot(ms, hold_ms);
        let mut live = self.shared_episodes.iter().filter(|e| live(e)).peekable();
        live.peek().is_some() && live.all(|e| slot(e.episode_ms) > slot(episode_ms))
    }

    /// The episode this instance owes the group an alert for at `at_ms`, just after
    /// another instance announced the pattern there, and which of the pattern's agents
    /// names it: the pattern is fleet-wide at `at_ms`, the episode is named by the
    /// first sighting of one of this instance's own agents that carries an alert,
    /// every cover live then names a later slot, and no cover of this instance's own
    /// is live (its own announcement stands, as at an event).
    fn owed(
        &self,
        at_ms: i64,
        window_ms: i64,
        hold_ms: i64,
        needed: usize,
    ) -> Option<(i64, usize)> {
        if self.announced.from_ms <= at_ms && at_ms < self.announced.until_ms {
            return None;
        }
        if self.present(at_ms, window_ms).count() < needed {
            return None;
        }
        let episode_ms = self.episode_of(at_ms, window_ms, hold_ms, needed);
        // Live from its start on: an instance that restarts meets the cover it
        // announced late in its previous run starting exactly there.
        let live = |e: &Episode| e.from_ms <= at_ms && at_ms < e.until_ms;
        if !self.live_covers_name_later(live, episode_ms, hold_ms) {
            return None;
        }
        let carrier = self
            .agents
            .iter()
            .position(|s| s.first_ms == episode_ms && s.carrier.is_some())?;
        Some((episode_ms, carrier))
    }

    /// Covers the pattern from `now_ms` for `hold_ms`, extending a live cover or
    /// starting one for the episode named `episode_ms`.
    fn announce(&mut self, now_ms: i64, hold_ms: i64, episode_ms: i64) {
        let own = &mut self.announced;
        if own.until_ms <= now_ms {
            own.from_ms = now_ms;
            own.episode_ms = episode_ms;
        }
        own.until_ms = own.until_ms.max(now_ms + hold_ms);
    }

    /// Adds a shared cover (to the hull, and to the episodes, where one cover that
    /// grew is one episode).
    fn merge_cover(&mut self, episode: Episode) {
        let (from, until) = &mut self.shared_cover;
        if *until <= *from {
            (*from, *until) = (episode.from_ms, episode.until_ms);
        } else {
            *from = (*from).min(episode.from_ms);
            *until = (*until).max(episode.until_ms);
        }
        let known = self
            .shared_episodes
            .iter_mut()
            .find(|e| (e.episode_ms, e.from_ms) == (episode.episode_ms, episode.from_ms));
        match known {
            Some(known) => known.until_ms = known.until_ms.max(episode.until_ms),
            None => {
                if self.shared_episodes.len() >= SHARED_EPISODES {
                    let oldest = (0..self.shared_episodes.len())
                        .min_by_key(|&i| self.shared_episodes[i].until_ms)
                        .unwrap_or(0);
                    self.shared_episodes.swap_remove(oldest);
                }
                self.shared_episodes.push(episode);
            }
        }
    }

    /// Notes that `agent` showed the pattern at `time_ms`. A sighting more than a
    /// window after the agent's stretch starts a new one. An earlier one extends it
    /// back: a restarted instance replays events it had shared sightings of, and the
    /// compacted topic keeps only each agent's latest.
    fn show(&mut self, agent: &str, time_ms: i64, window_ms: i64) {
        match self.agents.iter_mut().find(|s| s.agent == agent) {
            Some(shown) if time_ms > shown.last_ms + window_ms => {
                (shown.first_ms, shown.last_ms) = (time_ms, time_ms);
                shown.carrier = None;
            }
            Some(shown) => {
                shown.first_ms = shown.first_ms.min(time_ms);
                shown.last_ms = shown.last_ms.max(time_ms);
            }
            None => {
                if self.agents.len() >= MAX_AGENTS {
                    self.agents.remove(0);
                }
                self.agents.push(Shown {
                    agent: CompactString::new(agent),
                    first_ms: time_ms,
                    last_ms: time_ms,
                    carrier: None,
                });
            }
        }
    }

    /// Names the episode that `now_ms` belongs to, as any instance that knows the
    /// same sightings and covers names it, at whichever event of it it decides.
    ///
    /// An episode mirrors the cover: it starts at a sighting when at least `needed`
    /// agents show the pattern within `window_ms`, and lasts while such sightings
    /// follow one another within `hold_ms`. Only each agent's first and latest
    /// sighting are known, so those are the moments tested, and a stretch where enough
    /// agents count is inside the episode throughout. Its name is the first sighting of
    /// the earliest agent counted when it started (among those that arrived after the
    /// previous episode): the sighting a late instance is the likeliest to have
    /// received, where the moment the pattern became fleet-wide hangs on the latest
    /// one. Covers announced here or elsewhere join the episode they overlap, and the
    /// earliest name wins.
    fn episode_of(&self, now_ms: i64, window_ms: i64, hold_ms: i64, needed: usize) -> i64 {
        let own = Some(self.announced).filter(Episode::announced);
        let covers = self.shared_episodes.iter().copied().chain(own);
        // A replay after a crash meets the announcement its first run shared: that
        // names the episode, whatever of the agents' sightings compaction kept.
        if let Some(announced_here) = covers.clone().find(|e| e.from_ms == now_ms) {
            return announced_here.episode_ms;
        }
        // (time, order, change in count, cover): at one moment covers come first, then
        // departures, arrivals and latest sightings (no change). An agent counts from
        // its stretch's first sighting until a window after its latest, as in
        // `observe`.
        let mut moments: Vec<(i64, u8, i32, Option<Episode>)> = covers
            .map(|e| (e.from_ms, 0, 0, Some(e)))
            .chain(
                self.agents
                    .iter()
                    .filter(|s| s.first_ms <= now_ms)
                    .flat_map(|s| {
                        [
                            (s.last_ms + window_ms + 1, 1, -1, None),
                            (s.first_ms, 2, 1, None),
                            (s.last_ms.min(now_ms), 3, 0, None),
                        ]
                    }),
            )
            .filter(|&(time, ..)| time <= now_ms)
            .collect();
        moments.sort_unstable_by_key(|&(time, order, ..)| (time, order));
        let (mut count, mut name, mut covered_until) = (0i64, now_ms, i64::MIN);
        for (time, _, step, cover) in moments {
            let was_wide = count >= needed as i64;
            count += i64::from(step);
            let wide = count >= needed as i64;
            let (first, until) = match cover {
                Some(e) => (e.episode_ms, e.until_ms),
                // Still inside: a cover that has not lapsed, or enough agents counting
                // ever since the episode's last fleet-wide moment (only each agent's
                // first and latest sightings are known, not those between).
                None if step >= 0 && wide && (time < covered_until || was_wide) => {
                    covered_until = covered_until.max(time + hold_ms);
                    continue;
                }
                None if step >= 0 && wide => {
                    let previous = covered_until;
                    let first = self
                        .agents
                        .iter()
                        .filter(|s| s.counts_at(time, window_ms) && s.first_ms >= previous)
                        .map(|s| s.first_ms)
                        .min()
                        .unwrap_or(time);
                    (first, time + hold_ms)
                }
                // The last moment enough agents counted is inside the cover.
                None if was_wide && !wide => (name, time),
                None => continue,
            };
            name = if time >= covered_until {
                first
            } else {
                name.min(first)
            };
            covered_until = covered_until.max(until);
        }
        name
    }
}

/// How many windows a pattern remembers an agent's stretch after its last sighting.
/// Counting looks back one window; naming an episode looks back to its start, so that
/// an instance announcing late in an episode (up to this many windows long) finds the
/// same earliest agent as the one that announced on time.
const MEMORY_WINDOWS: i64 = 6;

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
    /// Patterns another instance announced since [`FleetContext::announce_late`] last
    /// looked, with the moment each announcement starts.
    announced_elsewhere: Vec<(FleetScope, CompactString, i64)>,
}

/// A fleet alert this instance announces on merging another instance's announcement,
/// rather than at one of its own events (see [`FleetContext::announce_late`]).
#[derive(Debug)]
pub struct LateAnnouncement {
    /// The alert the naming sighting would have carried, without the pattern's facts.
    pub carrier: Box<Alert>,
    /// The pattern.
    pub scope: FleetScope,
    /// The system it is on.
    pub system: CompactString,
    /// The window the agents fell in.
    pub window_ms: i64,
    /// The episode's name (see [`FleetVerdict::Fleet`]).
    pub episode_ms: i64,
    /// The pattern's quiet time before it is announced again.
    pub hold_ms: i64,
    /// Distinct agents showing the pattern when the other instance announced it.
    pub agents: usize,
    /// Up to five of them, earliest first.
    pub sample: Vec<String>,
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
    /// The name of that cover's episode (its earliest agent's first sighting), which
    /// the fleet alert's id carries. Absent without a cover, and from older records,
    /// which are read as named `announced_from_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_episode_ms: Option<i64>,
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
        let window = self.params.window_ms(scope);
        let needed = self.params.needed(scope, fleet_size);
        self.observations += 1;
        if self.observations % 4_096 == 0 {
            self.forget_before(now_ms);
        }
        let pattern = self
            .patterns
            .entry((scope, CompactString::new(system)))
            .or_default();
        pattern
            .agents
            .retain(|s| now_ms - s.last_ms <= MEMORY_WINDOWS * window);
        pattern.show(agent, now_ms, window);
        let agents = pattern.present(now_ms, window).count();
        let fleet_wide = agents >= needed;
        // One alert per episode: a pattern that keeps going stays covered, and is
        // announced again only after it went quiet for `quiet_windows`.
        let hold = window * self.params.quiet_windows;
        // A live cover of this engine's own names its episode; otherwise (an announcement,
        // or the first fleet-wide event here under another instance's cover) the
        // sightings and covers known do.
        let own_cover = pattern.announced.until_ms > now_ms;
        let episode_ms = match (fleet_wide, own_cover) {
            (false, _) => 0,
            (true, true) => pattern.announced.episode_ms,
            (true, false) => pattern.episode_of(now_ms, window, hold, needed),
        };
        let announce = fleet_wide
            && (!pattern.covers(now_ms)
                || (!own_cover && pattern.covered_only_later(now_ms, episode_ms, hold)));
        let sample = pattern
            .present(now_ms, window)
            .take(SAMPLE)
            .map(|s| s.agent.to_string())
            .collect();
        if fleet_wide {
            pattern.announce(now_ms, hold, episode_ms);
        }
        self.unshared.queue(|| FleetSighting {
            scope,
            system: system.to_owned(),
            agent_id: agent.to_owned(),
            time_ms: now_ms,
            announced_from_ms: pattern.announced.from_ms,
            announced_until_ms: pattern.announced.until_ms,
            announced_episode_ms: pattern
                .announced
                .announced()
                .then_some(pattern.announced.episode_ms),
        });
        if !fleet_wide {
            return FleetVerdict::Individual;
        }
        FleetVerdict::Fleet {
            scope,
            window_ms: window,
            announce,
            episode_ms,
            hold_ms: hold,
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

    /// Merges a sighting another instance made: it joins the agent's stretch (or starts
    /// a new one) and its cover joins the pattern's. Stretches older than the
    /// pattern's memory are dropped by the next observation of it.
    pub fn merge_sighting(&mut self, sighting: &FleetSighting) {
        let pattern = self
            .patterns
            .entry((sighting.scope, CompactString::new(&sighting.system)))
            .or_default();
        let cover = Episode {
            episode_ms: sighting
                .announced_episode_ms
                .unwrap_or(sighting.announced_from_ms),
            from_ms: sighting.announced_from_ms,
            until_ms: sighting.announced_until_ms,
        };
        if cover.announced() {
            pattern.merge_cover(cover);
            let key = (
                sighting.scope,
                CompactString::new(&sighting.system),
                cover.from_ms,
            );
            if !self.announced_elsewhere.contains(&key) {
                self.announced_elsewhere.push(key);
            }
        }
        pattern.show(
            &sighting.agent_id,
            sighting.time_ms,
            self.params.window_ms(sighting.scope),
        );
    }

    /// Keeps `carrier` (built only if needed) as the alert that `agent`'s sighting of
    /// `scope` on `system` at `now_ms` would carry, if that sighting begins the agent's
    /// stretch: such a sighting may name an episode (see [`Pattern::episode_of`]).
    ///
    /// Called for this instance's own agents after [`FleetContext::observe`] did not
    /// announce: in a group, the member whose sighting begins an episode may decide it
    /// before it learns of the other members' agents, and the member that makes the
    /// pattern fleet-wide may decide its own before it learns of that one. The second
    /// then announces under a later name than a single instance would, and the first
    /// may see no further event of the pattern to announce it at. With the carrier
    /// kept, the first announces on merging the late announcement
    /// ([`FleetContext::announce_late`]).
    pub fn carry(
        &mut self,
        scope: FleetScope,
        system: &str,
        agent: &str,
        now_ms: i64,
        carrier: impl FnOnce() -> Alert,
    ) {
        // A context that shares with nobody (`replay`, `demo`) merges no announcement.
        if !self.unshared.is_open() {
            return;
        }
        let Some(pattern) = self.patterns.get_mut(&(scope, CompactString::new(system))) else {
            return;
        };
        // Under this instance's own cover the episode is named already.
        if pattern.announced.until_ms > now_ms {
            return;
        }
        if let Some(shown) = pattern
            .agents
            .iter_mut()
            .find(|s| s.agent == agent && s.first_ms == now_ms && s.carrier.is_none())
        {
            shown.carrier = Some(Box::new(carrier()));
        }
    }

    /// The fleet alerts this instance owes the group after merging other instances'
    /// sightings: for each announcement merged since the last call, whether this
    /// instance knows an earlier start of the episode, named by one of its own agents'
    /// sightings, than every announcement live then (see [`Pattern::owed`]). Then the
    /// other instances published an id a single instance would not have, and this one
    /// publishes the single instance's, carried by that sighting's alert, and covers
    /// the pattern as if it had announced at that moment (shared with its next
    /// sightings). `fleet_size_at` gives the fleet's size at a moment (a rollout's
    /// share is of it).
    pub fn announce_late(
        &mut self,
        mut fleet_size_at: impl FnMut(i64) -> usize,
    ) -> Vec<LateAnnouncement> {
        let mut owed = Vec::new();
        for (scope, system, from_ms) in std::mem::take(&mut self.announced_elsewhere) {
            let window = self.params.window_ms(scope);
            let hold = window * self.params.quiet_windows;
            let needed = self.params.needed(scope, fleet_size_at(from_ms));
            let Some(pattern) = self.patterns.get_mut(&(scope, system.clone())) else {
                continue;
            };
            // Just after the other instance's announcing event: that event is its to
            // name, and a replay meets it again.
            let at_ms = from_ms + 1;
            let Some((episode_ms, naming)) = pattern.owed(at_ms, window, hold, needed) else {
                continue;
            };
            let sample = pattern
                .present(at_ms, window)
                .map(|s| s.agent.to_string())
                .collect::<Vec<_>>();
            let shown = &mut pattern.agents[naming];
            let Some(carrier) = shown.carrier.take() else {
                continue;
            };
            let (agent, last_ms) = (shown.agent.to_string(), shown.last_ms);
            pattern.announce(at_ms, hold, episode_ms);
            let announced = pattern.announced;
            self.unshared.queue(|| FleetSighting {
                scope,
                system: system.to_string(),
                agent_id: agent,
                time_ms: last_ms,
                announced_from_ms: announced.from_ms,
                announced_until_ms: announced.until_ms,
                announced_episode_ms: Some(announced.episode_ms),
            });
            owed.push(LateAnnouncement {
                carrier,
                scope,
                system,
                window_ms: window,
                episode_ms,
                hold_ms: hold,
                agents: sample.len(),
                sample: sample.into_iter().take(SAMPLE).collect(),
            });
        }
        owed
    }

    /// Drops patterns that neither cover `now_ms` nor remember an agent then, so the map
    /// stays as small as the fleet's recent deviations.
    fn forget_before(&mut self, now_ms: i64) {
        let params = &self.params;
        self.patterns.retain(|(scope, _), p| {
            let memory = MEMORY_WINDOWS * params.window_ms(*scope);
            p.announced.until_ms >= now_ms
                || p.shared_cover.1 >= now_ms
                || p.agents.iter().any(|s| s.last_ms + memory >= now_ms)
        });
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
        let (mut one, mut two) = sharing_pair();
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

    fn named(verdict: &FleetVerdict) -> Option<i64> {
        match verdict {
            FleetVerdict::Fleet {
                announce: true,
                episode_ms,
                ..
            } => Some(*episode_ms),
            _ => None,
        }
    }

    #[test]
    fn an_instance_announcing_late_names_the_episode_a_single_instance_names() {
        // An outage: bursts of failures on `crm`, agent by agent, a minute apart.
        let t = 1_000 * HOUR_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let mut alone = FleetContext::new(FleetParams::default());
        let announced: Vec<(&str, i64)> = [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 40)]
            .iter()
            .filter_map(|&(agent, minute)| {
                let verdict = alone.observe(FleetScope::Failures, "crm", agent, at(minute), 10);
                named(&verdict).map(|name| (agent, name))
            })
            .collect();
        assert_eq!(announced, vec![("c", at(0))], "announced by c, named by a");

        // In a group, `c` is on instance two, which decides it before it learns of
        // `a` and `b`: alone there, the burst is no fleet pattern yet. Instance one
        // decides `d` before it learns of `c`, and announces.
        let (mut one, mut two) = sharing_pair();
        one.observe(FleetScope::Failures, "crm", "a", at(0), 10);
        one.observe(FleetScope::Failures, "crm", "b", at(1), 10);
        let third = two.observe(FleetScope::Failures, "crm", "c", at(2), 10);
        assert_eq!(third, FleetVerdict::Individual);
        let fourth = one.observe(FleetScope::Failures, "crm", "d", at(3), 10);
        assert_eq!(named(&fourth), Some(at(0)), "{fourth:?}");
        // Instance two learns of `a` and `b` but not of the announcement, and
        // announces again at `e`: one episode, one name.
        for record in one.take_unshared() {
            if record.agent_id != "d" {
                two.merge_sighting(&record);
            }
        }
        let late = two.observe(FleetScope::Failures, "crm", "e", at(20), 10);
        assert_eq!(named(&late), Some(at(0)), "{late:?}");
    }

    /// The id of the fleet alert a verdict announces, if it announces one.
    fn announced_id(verdict: &FleetVerdict) -> Option<String> {
        match verdict {
            FleetVerdict::Fleet {
                announce: true,
                episode_ms,
                hold_ms,
                ..
            } => Some(crate::pipeline::ids::fleet_alert_id(
                "denied_burst",
                "failures",
                "crm",
                *episode_ms,
                *hold_ms,
            )),
            _ => None,
        }
    }

    #[test]
    fn a_member_that_never_learnt_of_the_first_sightings_publishes_the_single_instance_s_id() {
        // An outage ten minutes into an hour: `a` and `b` fail on a member killed
        // before it published their sightings; `c`, `d` and `e` on the other member.
        let t = 1_000 * HOUR_MS + 10 * MINUTE_MS;
        let sightings = [("a", 0), ("b", 1), ("c", 3), ("d", 4), ("e", 6)];
        let judge = |sightings: &[(&str, i64)]| {
            let mut fleet = FleetContext::new(FleetParams::default());
            sightings
                .iter()
                .map(|&(agent, minute)| {
                    fleet.observe(
                        FleetScope::Failures,
                        "crm",
                        agent,
                        t + minute * MINUTE_MS,
                        10,
                    )
                })
                .filter(|verdict| announced_id(verdict).is_some())
                .collect::<Vec<_>>()
        };
        let (alone, survivor) = (judge(&sightings), judge(&sightings[2..]));
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert_eq!(survivor.len(), 1, "{survivor:?}");
        // They name the episode by different agents' first sightings...
        assert_eq!(named(&alone[0]), Some(t));
        assert_eq!(named(&survivor[0]), Some(t + 3 * MINUTE_MS));
        // ...in one slot, so they publish one id.
        assert_eq!(announced_id(&alone[0]), announced_id(&survivor[0]));
    }

    /// Two members of a group, each sharing what it sees.
    fn sharing_pair() -> (FleetContext, FleetContext) {
        let (mut one, mut two) = (
            FleetContext::new(FleetParams::default()),
            FleetContext::new(FleetParams::default()),
        );
        one.share();
        two.share();
        (one, two)
    }

    /// The ids of the fleet alerts `fleet` announces for failures on `crm` by each
    /// (agent, minute) of `sightings`, in a fleet of ten.
    fn failures_announced(
        fleet: &mut FleetContext,
        sightings: &[(&str, i64)],
        at: impl Fn(i64) -> i64,
    ) -> Vec<String> {
        sightings
            .iter()
            .filter_map(|&(agent, minute)| {
                announced_id(&fleet.observe(FleetScope::Failures, "crm", agent, at(minute), 10))
            })
            .collect()
    }

    #[test]
    fn a_member_that_knows_an_earlier_start_than_another_s_announcement_publishes_the_single_instance_s_id(
    ) {
        // An outage ten minutes before the hour: `a` and `b` fail on member one, `c`,
        // `d` and `e` on member two after the hour, and `f` on member one again.
        let t = 1_000 * HOUR_MS - 10 * MINUTE_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let sightings = [
            ("a", 0),
            ("b", 1),
            ("c", 12),
            ("d", 13),
            ("e", 14),
            ("f", 20),
        ];
        let mut alone = FleetContext::new(FleetParams::default());
        let single = failures_announced(&mut alone, &sightings, at);
        assert_eq!(single.len(), 1, "{single:?}");

        // Member two decides `c`, `d` and `e` before it learns of `a` and `b`: it
        // announces at `e`, naming the outage after the hour.
        let (mut one, mut two) = sharing_pair();
        assert!(failures_announced(&mut one, &sightings[..2], at).is_empty());
        let late = failures_announced(&mut two, &sightings[2..5], at);
        assert_eq!(late.len(), 1, "{late:?}");
        assert_ne!(late, single, "two's id is not the single instance's");
        // Member one learns of two's sightings and announcement, and at `f` knows the
        // outage began before the hour: it publishes the single instance's id.
        for record in two.take_unshared() {
            one.merge_sighting(&record);
        }
        let at_f = one.observe(FleetScope::Failures, "crm", "f", at(20), 10);
        assert_eq!(announced_id(&at_f), single.first().cloned(), "{at_f:?}");
        // Once: its own cover now names the episode.
        let again = one.observe(FleetScope::Failures, "crm", "a", at(22), 10);
        assert_eq!(announced_id(&again), None, "{again:?}");
    }

    /// The alert `agent`'s sighting would carry (the detector and agent are what the
    /// tests read).
    fn carrier(agent: &str) -> crate::model::Alert {
        use crate::model::time::Timestamp;
        use crate::model::{Alert, Anomaly, DetectorRef, Evidence, Severity};
        Alert {
            schema_version: crate::model::SCHEMA_VERSION,
            alert_id: String::new(),
            time: Timestamp::from_millis(0),
            agent_id: agent.to_owned(),
            owner: None,
            detector: DetectorRef {
                id: "denied_burst".into(),
                kind: "denied_burst".into(),
            },
            severity: Severity::Low,
            score: 0.5,
            risk: 0.0,
            anomaly: Anomaly::Probing,
            summary: String::new(),
            evidence: Evidence {
                observed: 0.0,
                expected: 0.0,
                unit: String::new(),
                statistic: String::new(),
                statistic_value: 0.0,
                p_value: 1.0,
                baseline_size: 0,
                baseline_age_hours: 0.0,
                context: std::collections::BTreeMap::new(),
            },
            event_ids: vec![format!("{agent}-event")],
            credential_id: None,
            commands: Vec::new(),
            suppressed: 0,
            fleet: None,
        }
    }

    /// As [`failures_announced`], keeping the alert each sighting would carry, as the
    /// engine does for its own agents.
    fn failures_announced_carrying(
        fleet: &mut FleetContext,
        sightings: &[(&str, i64)],
        at: impl Fn(i64) -> i64,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for &(agent, minute) in sightings {
            let verdict = fleet.observe(FleetScope::Failures, "crm", agent, at(minute), 10);
            match announced_id(&verdict) {
                Some(id) => ids.push(id),
                None => fleet.carry(FleetScope::Failures, "crm", agent, at(minute), || {
                    carrier(agent)
                }),
            }
        }
        ids
    }

    /// The ids of the alerts `fleet` owes after its merges.
    fn owed_ids(fleet: &mut FleetContext) -> Vec<(String, String)> {
        fleet
            .announce_late(|_| 10)
            .into_iter()
            .map(|late| {
                let id = crate::pipeline::ids::fleet_alert_id(
                    &late.carrier.detector.id,
                    "failures",
                    &late.system,
                    late.episode_ms,
                    late.hold_ms,
                );
                (id, late.carrier.agent_id.clone())
            })
            .collect()
    }

    #[test]
    fn a_member_holding_an_episode_s_first_sightings_announces_it_on_merging_a_late_announcement() {
        // The outage of the test above, without `f`: member one sees no failure of it
        // after it learns of member two's late announcement.
        let t = 1_000 * HOUR_MS - 10 * MINUTE_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let sightings = [("a", 0), ("b", 1), ("c", 12), ("d", 13), ("e", 14)];
        let mut alone = FleetContext::new(FleetParams::default());
        let single = failures_announced(&mut alone, &sightings, at);
        assert_eq!(single.len(), 1, "{single:?}");

        let (mut one, mut two) = sharing_pair();
        assert!(failures_announced_carrying(&mut one, &sightings[..2], at).is_empty());
        let late = failures_announced_carrying(&mut two, &sightings[2..], at);
        assert_ne!(late, single, "two's id is not the single instance's");
        assert!(owed_ids(&mut one).is_empty(), "nothing merged yet");
        let _ = one.take_unshared();
        for record in two.take_unshared() {
            one.merge_sighting(&record);
        }
        // One publishes the single instance's id, carried by `a`'s sighting, which
        // names the episode.
        let owed = owed_ids(&mut one);
        assert_eq!(owed, vec![(single[0].clone(), "a".to_owned())]);
        // Once, and the other members learn that one covers the episode under that name.
        let shared = one.take_unshared();
        assert!(
            shared.iter().any(|s| s.announced_episode_ms == Some(at(0))),
            "{shared:?}"
        );
        for record in two.take_unshared() {
            one.merge_sighting(&record);
        }
        let again = one.observe(FleetScope::Failures, "crm", "b", at(15), 10);
        assert_eq!(announced_id(&again), None, "{again:?}");
        assert!(owed_ids(&mut one).is_empty());
        // Member two owes nothing: its own agents do not name the episode.
        for record in shared {
            two.merge_sighting(&record);
        }
        assert!(owed_ids(&mut two).is_empty());
    }

    #[test]
    fn a_late_announcement_in_the_single_instance_s_slot_or_without_a_carrier_is_owed_nothing() {
        // The outage starts after the hour: two's late name falls in the same slot as
        // the single instance's, so its id is the single instance's already.
        let t = 1_000 * HOUR_MS + 5 * MINUTE_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let sightings = [("a", 0), ("b", 1), ("c", 12), ("d", 13), ("e", 14)];
        let (mut one, mut two) = sharing_pair();
        failures_announced_carrying(&mut one, &sightings[..2], at);
        failures_announced_carrying(&mut two, &sightings[2..], at);
        for record in two.take_unshared() {
            one.merge_sighting(&record);
        }
        assert!(owed_ids(&mut one).is_empty());

        // Before the hour, but member one kept no carriers (a restarted instance that
        // has merged its previous run's sightings without deciding them again).
        let t = 2_000 * HOUR_MS - 10 * MINUTE_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let (mut one, mut two) = sharing_pair();
        failures_announced(&mut one, &sightings[..2], at);
        failures_announced_carrying(&mut two, &sightings[2..], at);
        let from_two = two.take_unshared();
        for record in &from_two {
            one.merge_sighting(record);
        }
        assert!(owed_ids(&mut one).is_empty());

        // A context that shares with nobody (`replay`) keeps no carriers at all.
        let mut alone = FleetContext::new(FleetParams::default());
        failures_announced_carrying(&mut alone, &sightings[..2], at);
        for record in &from_two {
            alone.merge_sighting(record);
        }
        assert!(owed_ids(&mut alone).is_empty());
    }

    #[test]
    fn a_member_restarted_after_announcing_late_does_not_announce_again() {
        let t = 1_000 * HOUR_MS - 10 * MINUTE_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let sightings = [("a", 0), ("b", 1), ("c", 12), ("d", 13), ("e", 14)];
        let (mut one, mut two) = sharing_pair();
        failures_announced_carrying(&mut one, &sightings[..2], at);
        failures_announced_carrying(&mut two, &sightings[2..], at);
        let from_two = two.take_unshared();
        for record in &from_two {
            one.merge_sighting(record);
        }
        assert_eq!(owed_ids(&mut one).len(), 1);
        let from_one = one.take_unshared();

        // The restarted member merges what the topic holds, decides `a` and `b` again
        // (carrying their alerts), then meets two's announcement once more.
        let mut restarted = FleetContext::new(FleetParams::default());
        restarted.share();
        for record in from_one.iter().chain(&from_two) {
            restarted.merge_sighting(record);
        }
        assert!(owed_ids(&mut restarted).is_empty());
        assert!(failures_announced_carrying(&mut restarted, &sightings[..2], at).is_empty());
        for record in &from_two {
            restarted.merge_sighting(record);
        }
        assert!(owed_ids(&mut restarted).is_empty());
    }

    #[test]
    fn a_pattern_quiet_for_two_windows_returns_as_a_new_episode() {
        // Failures count within 30 minutes; a return 50 minutes after the last burst
        // is the same outage, one 150 minutes after it a new one.
        let t = 1_000 * HOUR_MS;
        let mut fleet = FleetContext::new(FleetParams::default());
        let mut announced = Vec::new();
        let mut ids = Vec::new();
        let bursts = [
            ("a", 0),
            ("b", 1),
            ("c", 2),
            ("a", 52),
            ("b", 53),
            ("c", 54),
            ("a", 200),
            ("b", 201),
            ("c", 202),
        ];
        for (agent, minute) in bursts {
            let at = t + minute * MINUTE_MS;
            let verdict = fleet.observe(FleetScope::Failures, "crm", agent, at, 10);
            announced.extend(named(&verdict));
            ids.extend(announced_id(&verdict));
        }
        assert_eq!(announced, vec![t, t + 200 * MINUTE_MS]);
        assert_ne!(ids[0], ids[1], "two episodes, two ids");
    }

    #[test]
    fn an_agent_failing_through_two_episodes_does_not_merge_their_names() {
        // `a` fails every ten minutes for hours; `b` and `c` join it twice, two and a
        // half hours apart: two outages, two names.
        let t = 1_000 * HOUR_MS;
        let at = |minute: i64| t + minute * MINUTE_MS;
        let mut sightings: Vec<(&str, i64)> = (0..=20).map(|k| ("a", k * 10)).collect();
        sightings.extend([("b", 5), ("c", 6), ("b", 152), ("c", 153)]);
        sightings.sort_by_key(|&(_, minute)| minute);
        let mut fleet = FleetContext::new(FleetParams::default());
        let announced: Vec<i64> = sightings
            .iter()
            .filter_map(|&(agent, minute)| {
                named(&fleet.observe(FleetScope::Failures, "crm", agent, at(minute), 10))
            })
            .collect();
        assert_eq!(announced, vec![at(0), at(152)]);
    }

    #[test]
    fn a_replay_after_a_crash_names_the_episode_its_first_run_named() {
        let t = 1_000 * HOUR_MS;
        let at = |seconds: i64| t + seconds * 1_000;
        let events = [("a", 0), ("b", 60), ("a", 90), ("c", 120)];
        let mut first_run = FleetContext::new(FleetParams::default());
        first_run.share();
        let announced: Vec<i64> = events
            .iter()
            .filter_map(|&(agent, s)| {
                named(&first_run.observe(FleetScope::Failures, "crm", agent, at(s), 10))
            })
            .collect();
        assert_eq!(announced, vec![at(0)]);
        // Compaction keeps each agent's latest sighting; the run had committed the
        // first event, so the replay starts at the second.
        let mut latest: HashMap<String, FleetSighting> = HashMap::new();
        for sighting in first_run.take_unshared() {
            latest.insert(sighting.agent_id.clone(), sighting);
        }
        let mut replay = FleetContext::new(FleetParams::default());
        for sighting in latest.values() {
            replay.merge_sighting(sighting);
        }
        let again: Vec<i64> = events[1..]
            .iter()
            .filter_map(|&(agent, s)| {
                named(&replay.observe(FleetScope::Failures, "crm", agent, at(s), 10))
            })
            .collect();
        assert_eq!(again, announced, "the same alert id again");
    }

    #[test]
    fn sightings_without_an_episode_name_still_read() {
        let old = r#"{"record":"sighting","scope":"failures","system":"crm","agent_id":"a","time_ms":5,"announced_from_ms":5,"announced_until_ms":9}"#;
        let record: FleetRecord = serde_json::from_str(old).unwrap();
        let FleetRecord::Sighting(sighting) = &record else {
            panic!("{record:?}");
        };
        assert_eq!(sighting.announced_episode_ms, None);
        let mut fleet = FleetContext::new(FleetParams::default());
        fleet.merge_sighting(sighting);
        let pattern = &fleet.patterns[&(FleetScope::Failures, CompactString::new("crm"))];
        assert_eq!(
            pattern.shared_episodes[0].episode_ms, 5,
            "named by its cover's start"
        );
    }

    #[test]
    fn a_rollout_paused_for_more_than_a_day_stays_one_episode() {
        // Three agents adopt `wiki` at hour 0 and three more at hour 40: within the
        // rollout's two quiet days, though the context is swept clean in between.
        let t = 1_000 * HOUR_MS;
        let mut fleet = FleetContext::new(FleetParams::default());
        let mut announced = Vec::new();
        for agent in ["a", "b", "c"] {
            announced.extend(named(&fleet.observe(
                FleetScope::Novelty,
                "wiki",
                agent,
                t,
                10,
            )));
        }
        for i in 0..4_096 {
            let agent = format!("other-{}", i % 2);
            fleet.observe(FleetScope::Failures, "crm", &agent, t + 30 * HOUR_MS, 10);
        }
        for agent in ["d", "e", "f"] {
            let at = t + 40 * HOUR_MS;
            announced.extend(named(&fleet.observe(
                FleetScope::Novelty,
                "wiki",
                agent,
                at,
                10,
            )));
        }
        assert_eq!(announced, vec![t]);
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
