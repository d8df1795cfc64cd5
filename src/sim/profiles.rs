//! Agent profiles: who the simulated agents are and when and how they work.

use super::rng::{hash_unit, SimRng};
use crate::model::time::{DAY_MS, HOUR_MS};

/// The kinds of agent the simulator creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Works office hours on weekdays in its own time zone, with a lunch dip.
    OfficeAssistant,
    /// Runs a fast batch in a fixed nightly window, every day.
    NightlyBatch,
    /// Always on, slow and steady.
    AlwaysOnBot,
    /// Office hours, and keeps discovering new sources.
    Researcher,
}

impl Profile {
    /// Short name used in agent ids.
    pub fn name(self) -> &'static str {
        match self {
            Profile::OfficeAssistant => "assistant",
            Profile::NightlyBatch => "batch",
            Profile::AlwaysOnBot => "bot",
            Profile::Researcher => "research",
        }
    }

    /// Ranges for (median bytes per call, calls per minute while active, log-space
    /// spread of sizes), from which each agent of the profile draws its own values.
    fn ranges(self) -> [(f64, f64); 3] {
        match self {
            Profile::OfficeAssistant => [(4e3, 5e4), (0.3, 0.8), (0.8, 1.1)],
            Profile::NightlyBatch => [(2e5, 2e6), (6.0, 12.0), (0.4, 0.6)],
            Profile::AlwaysOnBot => [(1e3, 1e4), (0.15, 0.4), (0.5, 0.7)],
            Profile::Researcher => [(1e4, 2e5), (0.3, 0.6), (1.0, 1.2)],
        }
    }

    /// The actions agents of this profile take.
    pub fn action_names(self) -> Vec<&'static str> {
        self.actions().iter().map(|(a, _)| *a).collect()
    }

    fn actions(self) -> &'static [(&'static str, f64)] {
        match self {
            Profile::OfficeAssistant => &[
                ("read", 0.55),
                ("write", 0.2),
                ("search", 0.15),
                ("tool_call:send_email", 0.1),
            ],
            Profile::NightlyBatch => &[("read", 0.6), ("write", 0.35), ("delete", 0.05)],
            Profile::AlwaysOnBot => &[("read", 0.7), ("tool_call:notify", 0.3)],
            Profile::Researcher => &[("read", 0.7), ("search", 0.25), ("write", 0.05)],
        }
    }
}

/// One system an agent works with.
#[derive(Debug, Clone)]
pub struct SystemSpec {
    /// System name.
    pub name: String,
    /// Relative share of the agent's calls.
    pub weight: f64,
    /// Median bytes per call.
    pub median_bytes: f64,
}

/// A simulated agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Position in the fleet (stable for a seed).
    pub index: usize,
    /// Agent id.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Behaviour profile.
    pub profile: Profile,
    /// Core systems.
    pub systems: Vec<SystemSpec>,
    /// Calls per minute while active.
    pub per_minute: f64,
    /// Log-space spread of transfer sizes.
    pub bytes_sigma: f64,
    /// Offset of the agent's local time from UTC, in hours.
    pub utc_offset_h: i64,
    /// First hour (UTC) of a batch window.
    pub batch_start_h: i64,
    /// Chance per call that a researcher turns to a source it has never used.
    pub explore: f64,
}

/// Systems simulated agents work with.
pub(super) const CORE_SYSTEMS: &[&str] = &[
    "crm",
    "mail",
    "calendar",
    "docs",
    "tickets",
    "wiki",
    "chat",
    "kb",
    "billing",
    "warehouse",
    "s3://reports",
    "analytics",
    "search-index",
    "erp",
    "cms",
    "git",
];

impl AgentSpec {
    /// Creates the `index`-th agent with `profile`.
    pub fn generate(index: usize, profile: Profile, rng: &mut SimRng) -> Self {
        let system_count = match profile {
            Profile::NightlyBatch | Profile::AlwaysOnBot => 2 + rng.below(3) as usize,
            _ => 3 + rng.below(4) as usize,
        };
        let [bytes, pace, spread] = profile.ranges();
        let base_bytes = rng.uniform(bytes.0, bytes.1);
        let per_minute = rng.uniform(pace.0, pace.1);
        let bytes_sigma = rng.uniform(spread.0, spread.1);
        let first = rng.below(CORE_SYSTEMS.len() as u64) as usize;
        let systems = (0..system_count)
            .map(|k| SystemSpec {
                name: CORE_SYSTEMS[(first + k * 3) % CORE_SYSTEMS.len()].to_owned(),
                // Zipf-like shares, none below ~5% so each is seen on the first day.
                weight: 1.0 / (k as f64 + 1.0),
                median_bytes: base_bytes * rng.uniform(0.5, 2.0),
            })
            .collect();
        AgentSpec {
            index,
            id: format!("agent-{}-{index:04}", profile.name()),
            owner: format!("owner{:02}@example.com", index % 37),
            profile,
            systems,
            per_minute,
            bytes_sigma,
            utc_offset_h: rng.below(7) as i64 - 3,
            batch_start_h: [22, 23, 0, 1, 2, 3][rng.below(6) as usize],
            explore: if profile == Profile::Researcher {
                rng.uniform(0.02, 0.05)
            } else {
                0.0
            },
        }
    }

    /// Expected calls in the minute starting at `minute_ms` (`start_ms` is the Monday the
    /// simulation starts on). Zero outside the agent's schedule.
    pub fn rate_at(&self, seed: u64, start_ms: i64, minute_ms: i64) -> f64 {
        self.rate_with_offset(seed, start_ms, minute_ms, self.utc_offset_h)
    }

    /// Like [`AgentSpec::rate_at`], with local time at `utc_offset_h` instead of the
    /// agent's own offset: how a schedule kept in local time moves in UTC when the
    /// agent's day shifts or its zone's clocks change.
    pub fn rate_with_offset(
        &self,
        seed: u64,
        start_ms: i64,
        minute_ms: i64,
        utc_offset_h: i64,
    ) -> f64 {
        let elapsed = minute_ms - start_ms;
        let day = elapsed.div_euclid(DAY_MS);
        let utc_hour = elapsed.rem_euclid(DAY_MS) / HOUR_MS;
        let noise =
            |salt: u64| hash_unit(&[seed, self.index as u64, day as u64, utc_hour as u64, salt]);
        match self.profile {
            Profile::OfficeAssistant | Profile::Researcher => {
                let local = elapsed + utc_offset_h * HOUR_MS;
                let local_day = local.div_euclid(DAY_MS);
                let local_hour = local.rem_euclid(DAY_MS) / HOUR_MS;
                let (open, close) = self.working_hours().unwrap_or((8, 18));
                let weekday = local_day.rem_euclid(7) < 5;
                if !weekday || local_hour < open || local_hour >= close {
                    return 0.0;
                }
                let lunch = if local_hour == 12 { 0.4 } else { 1.0 };
                self.per_minute * lunch * (0.5 + noise(1))
            }
            Profile::NightlyBatch => {
                let in_window = (utc_hour - self.batch_start_h).rem_euclid(24) < 1;
                if in_window {
                    self.per_minute * (0.8 + 0.4 * noise(2))
                } else {
                    0.0
                }
            }
            Profile::AlwaysOnBot => self.per_minute * (0.7 + 0.6 * noise(3)),
        }
    }

    /// Local opening and closing hour of an office-hours agent's working day (`None` for
    /// agents whose schedule is kept in UTC).
    pub fn working_hours(&self) -> Option<(i64, i64)> {
        match self.profile {
            Profile::OfficeAssistant => Some((8, 18)),
            Profile::Researcher => Some((9, 19)),
            Profile::NightlyBatch | Profile::AlwaysOnBot => None,
        }
    }

    /// A random action for a normal call.
    pub fn pick_action(&self, rng: &mut SimRng) -> &'static str {
        let actions = self.profile.actions();
        let weights: Vec<f64> = actions.iter().map(|(_, w)| *w).collect();
        actions[rng.weighted(&weights)].0
    }

    /// A random core system for a normal call.
    pub fn pick_system(&self, rng: &mut SimRng) -> &SystemSpec {
        let weights: Vec<f64> = self.systems.iter().map(|s| s.weight).collect();
        &self.systems[rng.weighted(&weights)]
    }

    /// Typical bytes per call across the agent's systems.
    pub fn typical_bytes(&self) -> f64 {
        let total: f64 = self.systems.iter().map(|s| s.weight).sum();
        self.systems
            .iter()
            .map(|s| s.weight * s.median_bytes)
            .sum::<f64>()
            / total.max(1e-9)
    }
}
