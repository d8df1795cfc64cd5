//! The bars on every scenario, over several seeds: detection was shaped on strong
//! attacks in a steady fleet, and real fleets have moderate attacks and ordinary change.
//!
//! - strong and moderate attacks: recall ≥ 0.95 on each kind, ≤ 0.5 false alerts per
//!   10,000 events;
//! - every legitimate change at once (21 days, with attacks): recall ≥ 0.95 on each kind,
//!   ≤ 1 false alert per 10,000 events, and no healthy agent revoked or suspended;
//! - strong and moderate attacks amid every change (`mixed`): the same bars (here most
//!   agents are victims, so the healthy-agent bar says less than in `change`);
//! - a rollout alone: the new system draws no command and at most a handful of alerts;
//! - an outage alone: no agent using the broken system is commanded for it.
//!
//! Recall and false-alert rates are pooled over the seeds (each seed is a different
//! fleet); the per-agent bars hold on every seed. Every message prints the evaluations.

mod common;

use std::collections::BTreeMap;

use agentwatch::eval::{KindRecall, GRACE_MS};
use agentwatch::model::time::parse_rfc3339;
use agentwatch::model::CommandAction;
use agentwatch::sim::{ChangeKind, Scenario, SimConfig, Simulation, ROLLOUT_SYSTEM};
use common::replay::{replay, Replayed};

const SEEDS: [u64; 3] = [3, 17, 42];

/// Kinds that do not meet the recall bar of 0.95 yet, with the recall each is
/// held to instead so that it cannot silently get worse (pooled over [`SEEDS`]). Issue 9
/// stays open until this list is empty:
///
/// - `moderate_runaway` (5× the pace for ten minutes; measured 0.36–0.39, up from
///   0.17–0.22 with the top-percentile tail of `rate`): a loop at five times an hour's
///   pace is often no faster than the agent's busiest sessions of the fortnight, which
///   is what an hour-blind rate test compares it with.
/// - `moderate_exfiltration` (8–20× the typical size for ten minutes; measured 0.94–1.0):
///   a single transfer alerts only if it is also beyond the agent's own largest ones
///   (which took healthy agents with heavy-tailed sizes out of revocation on
///   independently generated traffic); a batch agent whose sizes already span 10× now
///   needs the window or the sequential test, and two of 36 escape both.
/// - `slow_exfiltration` (3× sizes for hours; measured 0.69–0.92): caught by the size
///   CUSUM on agents with tight size distributions, not on heavy-tailed ones.
/// - `peer_system_access` (a non-sensitive system other agents use; measured 0): within a
///   budget of 0.01 false alerts per agent-day, a first use of a non-sensitive system is
///   not improbable enough for an agent making hundreds of calls a day; no floor is
///   asserted for it, its recall is printed.
const KNOWN_GAPS: [(&str, f64); 4] = [
    ("moderate_exfiltration", 0.9),
    ("moderate_runaway", 0.3),
    ("slow_exfiltration", 0.65),
    ("peer_system_access", 0.0),
];

/// The recall bar for `kind`: the issue's, unless it is a known gap.
fn recall_bar(kind: &str, bar: f64) -> f64 {
    KNOWN_GAPS
        .iter()
        .find(|(gap, _)| *gap == kind)
        .map_or(bar, |(_, floor)| *floor)
}

/// Simulates `scenario` and replays it through the built-in detectors (no registry).
fn run(scenario: Scenario, agents: usize, days: u32, seed: u64) -> (Simulation, Replayed) {
    let simulation = Simulation::new(SimConfig {
        agents,
        days,
        seed,
        attacks: true,
        scenario,
    });
    let dir = tempfile::tempdir().unwrap();
    let replayed = replay(common::engine(dir.path()), &simulation);
    (simulation, replayed)
}

/// Recall per kind and false alerts, pooled over seeds, with every seed's report.
#[derive(Default)]
struct Pooled {
    per_kind: BTreeMap<String, KindRecall>,
    false_alerts: u64,
    events: u64,
    reports: String,
}

impl Pooled {
    fn add(&mut self, seed: u64, scenario: Scenario, replayed: &Replayed) {
        let evaluation = &replayed.evaluation;
        for (kind, recall) in &evaluation.per_kind {
            let pooled = self.per_kind.entry(kind.clone()).or_default();
            pooled.incidents += recall.incidents;
            pooled.detected += recall.detected;
        }
        self.false_alerts += evaluation.false_alerts();
        self.events += evaluation.events;
        self.reports += &format!(
            "--- scenario {scenario}, seed {seed}\n{}",
            replayed.report()
        );
    }

    fn false_per_10k(&self) -> f64 {
        self.false_alerts as f64 * 10_000.0 / self.events.max(1) as f64
    }

    fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .per_kind
            .iter()
            .map(|(kind, r)| format!("{kind} {:.3} ({}/{})", r.recall(), r.detected, r.incidents))
            .collect();
        format!(
            "pooled: {}; {} false alerts in {} events = {:.3} per 10k\n{}",
            kinds.join(", "),
            self.false_alerts,
            self.events,
            self.false_per_10k(),
            self.reports
        )
    }

    /// Where the pool misses the bars: recall ≥ `bar` on each of `kinds` kinds (with at
    /// least `min_incidents` of each) and at most `false_bar` false alerts per 10,000
    /// events. All misses are listed, not just the first, so one run shows every gap.
    fn misses(&self, kinds: usize, min_incidents: usize, bar: f64, false_bar: f64) -> Vec<String> {
        let mut misses = Vec::new();
        if self.per_kind.len() != kinds {
            misses.push(format!(
                "{} incident kinds, expected {kinds}",
                self.per_kind.len()
            ));
        }
        for (kind, recall) in &self.per_kind {
            if recall.incidents < min_incidents {
                misses.push(format!("{kind}: only {} incidents", recall.incidents));
            }
            let bar = recall_bar(kind, bar);
            if recall.recall() < bar {
                misses.push(format!("{kind}: recall {:.3} below {bar}", recall.recall()));
            }
        }
        if self.false_per_10k() > false_bar {
            misses.push(format!(
                "{:.3} false alerts per 10k events, above {false_bar}",
                self.false_per_10k()
            ));
        }
        misses
    }
}

/// Fails with every miss and the pooled and per-seed reports.
fn assert_no_misses(misses: &[String], pooled: &Pooled) {
    let summary = pooled.summary();
    println!("{summary}");
    assert!(misses.is_empty(), "{misses:#?}\n{summary}");
}

const SEVERE: [CommandAction; 2] = [CommandAction::RevokeCredential, CommandAction::SuspendAgent];

#[test]
fn strong_attacks_are_caught_with_few_false_alerts() {
    let mut pooled = Pooled::default();
    for seed in SEEDS {
        let (_, replayed) = run(Scenario::STRONG, 120, 14, seed);
        pooled.add(seed, Scenario::STRONG, &replayed);
    }
    assert_no_misses(&pooled.misses(3, 60, 0.95, 0.5), &pooled);
}

#[test]
fn moderate_attacks_are_caught_with_few_false_alerts() {
    let mut pooled = Pooled::default();
    for seed in SEEDS {
        let (_, replayed) = run(Scenario::MODERATE, 120, 14, seed);
        pooled.add(seed, Scenario::MODERATE, &replayed);
    }
    assert_no_misses(&pooled.misses(4, 30, 0.95, 0.5), &pooled);
}

/// Runs a scenario with every legitimate change over 21 days and holds it to the change
/// bars: recall, ≤ 1 false alert per 10k events, no healthy agent revoked or suspended.
fn holds_the_change_bars(scenario: Scenario, kinds: usize, min_incidents: usize) {
    let mut pooled = Pooled::default();
    let mut severe = Vec::new();
    for seed in SEEDS {
        let (simulation, replayed) = run(scenario, 120, 21, seed);
        assert!(
            ChangeKind::ALL
                .iter()
                .all(|k| simulation.changes().iter().any(|c| c.kind == k.name())),
            "every change happens: {:?}",
            simulation.changes()
        );
        pooled.add(seed, scenario, &replayed);
        for agent in replayed.evaluation.healthy_agents_with(&SEVERE) {
            severe.push(format!("seed {seed}: {agent}"));
        }
    }
    let mut misses = pooled.misses(kinds, min_incidents, 0.95, 1.0);
    if !severe.is_empty() {
        misses.push(format!(
            "{} healthy agent(s) revoked or suspended: {severe:?}",
            severe.len()
        ));
    }
    assert_no_misses(&misses, &pooled);
}

#[test]
fn legitimate_change_is_absorbed_and_attacks_still_caught() {
    holds_the_change_bars(Scenario::CHANGE, 3, 60);
}

#[test]
fn mixed_attacks_amid_change_are_caught_and_healthy_agents_left_alone() {
    holds_the_change_bars(Scenario::MIXED, 7, 30);
}

#[test]
fn a_rollout_draws_no_command_and_at_most_a_handful_of_alerts() {
    let scenario = Scenario::QUIET.with(ChangeKind::Rollout);
    let mut failures = Vec::new();
    let mut reports = String::new();
    for seed in SEEDS {
        let (simulation, replayed) = run(scenario, 100, 14, seed);
        assert_eq!(simulation.changes().len(), 1, "{:?}", simulation.changes());
        let on_rollout: Vec<String> = replayed
            .alerts
            .iter()
            .filter(|a| {
                a.evidence.context.get("system").map(String::as_str) == Some(ROLLOUT_SYSTEM)
            })
            .map(|a| format!("{} {} {}", a.time, a.detector.id, a.summary))
            .collect();
        let commands = replayed
            .summary
            .command_marks
            .iter()
            .filter(|c| c.system.as_deref() == Some(ROLLOUT_SYSTEM))
            .count();
        if commands > 0 || on_rollout.len() > 5 {
            failures.push(format!(
                "seed {seed}: {commands} command(s) and {} alert(s) on {ROLLOUT_SYSTEM}; first: {:?}",
                on_rollout.len(),
                on_rollout.iter().take(5).collect::<Vec<_>>()
            ));
        }
        reports += &format!("--- rollout, seed {seed}\n{}", replayed.report());
    }
    println!("{reports}");
    assert!(failures.is_empty(), "{failures:#?}\n{reports}");
}

#[test]
fn an_outage_commands_no_agent() {
    let scenario = Scenario::QUIET.with(ChangeKind::Outage);
    let mut failures = Vec::new();
    let mut reports = String::new();
    for seed in SEEDS {
        let (simulation, replayed) = run(scenario, 100, 14, seed);
        let [outage] = simulation.changes() else {
            panic!("one outage expected: {:?}", simulation.changes())
        };
        let system = outage.system.as_deref();
        let start = parse_rfc3339(&outage.start).unwrap();
        let end = parse_rfc3339(outage.end.as_deref().unwrap()).unwrap() + GRACE_MS;
        let caused: Vec<String> = replayed
            .summary
            .command_marks
            .iter()
            .filter(|c| {
                let during =
                    (start..=end).contains(&c.time_ms) && outage.agents.contains(&c.agent_id);
                during || (c.time_ms >= start && c.system.as_deref() == system)
            })
            .map(|c| format!("{} {} ({})", c.action.as_str(), c.agent_id, c.detector))
            .collect();
        if !caused.is_empty() {
            failures.push(format!(
                "seed {seed}: {} command(s) from the outage of {} at {}: {caused:?}",
                caused.len(),
                system.unwrap_or("?"),
                outage.start
            ));
        }
        reports += &format!("--- outage, seed {seed}\n{}", replayed.report());
    }
    println!("{reports}");
    assert!(failures.is_empty(), "{failures:#?}\n{reports}");
}
