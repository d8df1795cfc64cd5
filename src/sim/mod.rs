//! Realistic synthetic agent traffic with labelled attacks and legitimate change.
//!
//! A fleet of agents with distinct profiles (office-hours assistants, nightly batch
//! jobs, always-on bots, exploratory researchers), each with its own systems, transfer
//! sizes, pace and schedule. A [`Scenario`] chooses what happens to it: strong attacks
//! (exfiltration as one huge transfer or a burst, first access to a sensitive system,
//! runaway loops), moderate attacks within a small multiple of the agent's own behaviour,
//! and legitimate changes (a rollout, an outage, job and shift changes, daylight saving,
//! joiners and leavers). Attacks are written to a labels file with their exact times,
//! changes to a changes file. Deterministic for a seed, on every platform.

mod approvals;
mod attacks;
mod changes;
mod dynamics;
mod fleet;
mod load;
mod moderate;
mod profiles;
mod rng;
mod scenario;
mod stream;

pub use approvals::{ApprovalTally, APPROVER};
pub use attacks::{AttackKind, PlannedAttack};
pub use changes::Change;
pub use dynamics::ROLLOUT_SYSTEM;
pub use fleet::fleet_registry;
pub use load::flat_load;
pub use profiles::{AgentSpec, Profile};
pub use rng::SimRng;
pub use scenario::{ChangeKind, Scenario};
pub use stream::EventStream;

use std::collections::BTreeSet;

use crate::eval::Incident;
use crate::model::time::{format_rfc3339, parse_rfc3339, DAY_MS};
use dynamics::Dynamics;

/// The Monday on which every simulation starts (event time; fixed for determinism).
pub const SIM_START: &str = "2026-01-05T00:00:00Z";

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Fleet size.
    pub agents: usize,
    /// Days of traffic.
    pub days: u32,
    /// Seed; the same seed gives the same events and labels.
    pub seed: u64,
    /// Inject labelled attacks (those the scenario names; `false` leaves out all).
    pub attacks: bool,
    /// Which attacks and legitimate changes happen.
    pub scenario: Scenario,
}

impl Default for SimConfig {
    /// The `simulate` command's defaults: 200 agents, 14 days, seed 1, strong attacks.
    fn default() -> Self {
        SimConfig {
            agents: 200,
            days: 14,
            seed: 1,
            attacks: true,
            scenario: Scenario::default(),
        }
    }
}

/// A planned simulation: the fleet, its changes and its attacks.
#[derive(Debug, Clone)]
pub struct Simulation {
    config: SimConfig,
    start_ms: i64,
    agents: Vec<AgentSpec>,
    dynamics: Dynamics,
    attacks: Vec<PlannedAttack>,
    /// The approval records the approval attacks name ([`Simulation::with_approvals`]).
    attack_approvals: Vec<crate::approvals::AgentApprovalV1>,
}

impl Simulation {
    /// Plans the fleet, the changes and the behavioural attacks of `config`'s scenario.
    pub fn new(config: SimConfig) -> Self {
        Self::plan(config, &attacks::BEHAVIOURAL)
    }

    /// Like [`Simulation::new`], plus (when the scenario has strong attacks) attacks on
    /// identity and policy (scope violations, unapproved high-risk actions, credential
    /// misuse, off-hours work, an unregistered agent, denial bursts), which only a
    /// registry ([`Simulation::registry`]) lets the engine recognise.
    pub fn with_policy(config: SimConfig) -> Self {
        let kinds: Vec<AttackKind> = attacks::BEHAVIOURAL
            .iter()
            .chain(attacks::POLICY.iter())
            .copied()
            .collect();
        Self::plan(config, &kinds)
    }

    fn plan(config: SimConfig, kinds: &[AttackKind]) -> Self {
        let start_ms = parse_rfc3339(SIM_START).unwrap_or_default();
        let mut rng = SimRng::new(config.seed);
        let profiles = [
            (Profile::OfficeAssistant, 0.40),
            (Profile::NightlyBatch, 0.15),
            (Profile::AlwaysOnBot, 0.25),
            (Profile::Researcher, 0.20),
        ];
        let weights: Vec<f64> = profiles.iter().map(|(_, w)| *w).collect();
        let agents: Vec<AgentSpec> = (0..config.agents)
            .map(|index| {
                let profile = profiles[rng.weighted(&weights)].0;
                AgentSpec::generate(index, profile, &mut rng)
            })
            .collect();
        let dynamics = Dynamics::plan(&agents, config.seed, start_ms, config.days, config.scenario);
        let mut attacks = Vec::new();
        if config.attacks && config.scenario.strong() {
            attacks = attacks::plan(&agents, &config, &dynamics, start_ms, kinds);
        }
        if config.attacks && config.scenario.moderate() {
            let taken: BTreeSet<usize> = attacks.iter().map(|a| a.agent).collect();
            attacks.extend(moderate::plan(
                &agents, &config, &dynamics, start_ms, &taken,
            ));
            attacks.sort_by_key(|a| (a.start_ms(), a.agent));
        }
        Simulation {
            config,
            start_ms,
            agents,
            dynamics,
            attacks,
            attack_approvals: Vec::new(),
        }
    }

    /// Adds (when the scenario has strong attacks) labelled attacks on approvals:
    /// deletes with a forged, a foreign, an expired and a reused approval, caught only
    /// when approvals are verified (`replay --approvals`). Their records, and those of
    /// the legitimate deletes, come from [`Simulation::approvals`]. Everything else the
    /// simulation does stays as it was: the attacks have their own random stream.
    pub fn with_approvals(mut self) -> Self {
        if !(self.config.attacks && self.config.scenario.strong()) {
            return self;
        }
        let taken: BTreeSet<usize> = self.attacks.iter().map(|a| a.agent).collect();
        let plan = approvals::plan(
            &self.agents,
            &self.config,
            &self.dynamics,
            self.start_ms,
            &taken,
        );
        self.attacks.extend(plan.attacks);
        self.attacks.sort_by_key(|a| (a.start_ms(), a.agent));
        self.attack_approvals = plan.records;
        self
    }

    /// The approval records of this simulation: one for each approval its legitimate
    /// events used (as counted in `tally` while they were written; see
    /// [`ApprovalTally`]), then those the approval attacks name. Forged approvals have
    /// none, by definition.
    pub fn approvals(&self, tally: &ApprovalTally) -> Vec<crate::approvals::AgentApprovalV1> {
        let attacked: BTreeSet<&str> = self
            .attacks
            .iter()
            .flat_map(|a| a.calls.iter().filter_map(|c| c.approval.as_deref()))
            .collect();
        let mut records = tally.records(&attacked);
        records.extend(self.attack_approvals.iter().cloned());
        records
    }

    /// What it simulates.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The simulated fleet.
    pub fn agents(&self) -> &[AgentSpec] {
        &self.agents
    }

    /// The planned attacks.
    pub fn attacks(&self) -> &[PlannedAttack] {
        &self.attacks
    }

    /// The legitimate changes, in start order, as `simulate --changes` writes them.
    /// None is an incident.
    pub fn changes(&self) -> &[Change] {
        self.dynamics.changes()
    }

    /// Event time of the first simulated minute.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Event time just after the last simulated minute.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.config.days) * DAY_MS
    }

    /// The labelled incidents, as `replay --labels` reads them.
    pub fn labels(&self) -> Vec<Incident> {
        self.attacks
            .iter()
            .map(|attack| Incident {
                agent_id: attack
                    .impostor
                    .clone()
                    .unwrap_or_else(|| self.agents[attack.agent].id.clone()),
                kind: attack.kind.name().to_owned(),
                start: format_rfc3339(attack.start_ms()),
                end: format_rfc3339(attack.end_ms()),
                detector: attack.kind.detector().map(str::to_owned),
            })
            .collect()
    }

    /// The fleet's registry records: owners, boundaries, weekly credentials and, for
    /// office assistants, declared working hours. Agents that adopt a rolled-out system
    /// are granted it, as an organisation rolling it out would; other changes (a new
    /// shift, daylight saving) are not reflected: the records describe the fleet as
    /// declared at the start.
    pub fn registry(&self) -> Vec<crate::identity::AgentRecordV1> {
        let mut records = fleet_registry(&self.agents, self.start_ms, self.config.days);
        for index in self.dynamics.adopters() {
            if let Some(systems) = records
                .get_mut(index)
                .and_then(|r| r.allowed_systems.as_mut())
            {
                systems.push(ROLLOUT_SYSTEM.to_owned());
            }
        }
        records
    }

    /// The events, in event-time order (minute by minute, across the whole fleet).
    pub fn events(&self) -> EventStream<'_> {
        EventStream::new(self)
    }
}

#[cfg(test)]
mod dynamics_tests;
#[cfg(test)]
mod moderate_tests;
#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventTime;

    fn config() -> SimConfig {
        SimConfig {
            agents: 12,
            days: 6,
            seed: 3,
            attacks: true,
            ..SimConfig::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a: Vec<_> = Simulation::new(config()).events().take(2_000).collect();
        let b: Vec<_> = Simulation::new(config()).events().take(2_000).collect();
        assert_eq!(a, b);
        let other = SimConfig {
            seed: 4,
            ..config()
        };
        let c: Vec<_> = Simulation::new(other).events().take(2_000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_in_time_order_and_attacks_are_labelled() {
        let sim = Simulation::new(config());
        let mut last = 0;
        let mut injected = 0;
        let labels = sim.labels();
        assert!(!labels.is_empty());
        let attack_times: Vec<i64> = sim
            .attacks()
            .iter()
            .flat_map(|a| a.calls.iter().map(|c| c.time_ms))
            .collect();
        for event in sim.events() {
            let EventTime::Rfc3339(text) = &event.time else {
                panic!("rfc3339 expected")
            };
            let t = parse_rfc3339(text).unwrap();
            assert!(t >= last, "out of order");
            last = t;
            if attack_times.contains(&t) {
                injected += 1;
            }
        }
        assert!(injected >= attack_times.len());
    }

    /// Approval attacks are added on top: the other labels stay as they were, and the
    /// events are the same but for the attack's own deletes (and the ids after them).
    #[test]
    fn approval_attacks_add_to_a_simulation_and_change_nothing_else() {
        let plain = Simulation::new(config());
        let with = Simulation::new(config()).with_approvals();
        let approval_kinds = approvals::ATTACKS.map(AttackKind::name);
        let (added, kept): (Vec<_>, Vec<_>) = with
            .labels()
            .into_iter()
            .partition(|i| approval_kinds.contains(&i.kind.as_str()));
        assert_eq!(kept, plain.labels());
        let kinds: BTreeSet<&str> = added.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        let anonymous = |mut event: crate::model::AgentEventV1| {
            event.event_id.clear();
            event
        };
        let attack_ids: BTreeSet<String> = with
            .attacks()
            .iter()
            .flat_map(|a| a.calls.iter().filter_map(|c| c.approval.clone()))
            .collect();
        let (injected, rest): (Vec<_>, Vec<_>) = with.events().map(anonymous).partition(|e| {
            e.approval_id
                .as_ref()
                .is_some_and(|id| attack_ids.contains(id))
        });
        assert_eq!(rest, plain.events().map(anonymous).collect::<Vec<_>>());
        let calls: usize = with
            .attacks()
            .iter()
            .filter(|a| approval_kinds.contains(&a.kind.name()))
            .map(|a| a.calls.len())
            .sum();
        assert_eq!(injected.len(), calls);
    }

    #[test]
    fn office_assistants_sleep_at_night_and_batches_run_at_night() {
        let sim = Simulation::new(SimConfig {
            agents: 40,
            days: 2,
            seed: 9,
            attacks: false,
            ..SimConfig::default()
        });
        for agent in sim.agents() {
            let active: Vec<i64> = (0..24)
                .filter(|h| agent.rate_at(9, sim.start_ms(), sim.start_ms() + h * 3_600_000) > 0.0)
                .collect();
            match agent.profile {
                Profile::OfficeAssistant => assert!(active.len() == 10, "{active:?}"),
                Profile::NightlyBatch => assert_eq!(active.len(), 1),
                Profile::AlwaysOnBot => assert_eq!(active.len(), 24),
                Profile::Researcher => assert_eq!(active.len(), 10),
            }
        }
    }
}
