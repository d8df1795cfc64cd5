//! The pipeline over RocksDB: stopping and resuming counts every event exactly once,
//! and outputs repeat with stable ids after a crash (at-least-once).

mod common;

use std::collections::BTreeSet;

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
use agentwatch::app::simulate::SimReader;
use agentwatch::pipeline::Engine;
use agentwatch::sim::{SimConfig, Simulation};
use agentwatch::state::AgentState;

fn sim() -> Simulation {
    Simulation::new(SimConfig {
        agents: 30,
        days: 7,
        seed: 11,
        attacks: true,
        ..SimConfig::default()
    })
}

fn replay(engine: &mut Engine, max_lines: Option<u64>) -> (Vec<String>, u64) {
    let simulation = sim();
    let mut output = Vec::new();
    let config = ReplayConfig {
        source: "test".into(),
        max_lines,
        commit_every: 5_000,
        ..ReplayConfig::default()
    };
    let summary = run_replay(
        engine,
        SimReader::simulation(&simulation),
        &config,
        ReplaySinks {
            output: &mut output,
            scores: None,
        },
        &mut |_| {},
    )
    .unwrap();
    let ids = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value
                .get("alert_id")
                .or_else(|| value.get("command_id"))
                .and_then(|v| v.as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    (ids, summary.events)
}

fn all_states(engine: &Engine) -> Vec<(String, AgentState)> {
    let mut states = Vec::new();
    engine
        .store()
        .for_each_agent(|id, state| states.push((id.to_owned(), state)))
        .unwrap();
    states
}

#[test]
fn stop_and_resume_counts_every_event_exactly_once() {
    let whole_dir = tempfile::tempdir().unwrap();
    let mut whole = common::engine(whole_dir.path());
    let (whole_ids, total) = replay(&mut whole, None);
    assert!(total > 20_000, "{total}");
    assert!(
        !whole_ids.is_empty(),
        "the simulation's attacks raised nothing"
    );

    let split_dir = tempfile::tempdir().unwrap();
    let mut first_ids = {
        let mut engine = common::engine(split_dir.path());
        let (ids, events) = replay(&mut engine, Some(total / 3));
        assert_eq!(events, total / 3);
        ids
    };
    // A fresh engine on the same directory, as after a restart: it resumes at the
    // committed line and processes only the rest.
    let mut resumed = common::engine(split_dir.path());
    let (second_ids, events) = replay(&mut resumed, None);
    assert_eq!(
        events,
        total - total / 3,
        "resumed run re-read or skipped events"
    );
    first_ids.extend(second_ids);
    assert_eq!(
        first_ids, whole_ids,
        "outputs differ from an uninterrupted run"
    );

    let whole_states = all_states(&whole);
    let resumed_states = all_states(&resumed);
    assert_eq!(whole_states.len(), resumed_states.len());
    let counted: u64 = resumed_states.iter().map(|(_, s)| s.baseline.events).sum();
    assert_eq!(
        counted, total,
        "baselines did not count every event exactly once"
    );
    assert_eq!(
        whole_states, resumed_states,
        "resumed state differs from an uninterrupted run"
    );
}

#[test]
fn a_crash_before_commit_replays_outputs_with_the_same_ids_and_no_double_count() {
    let whole_dir = tempfile::tempdir().unwrap();
    let mut whole = common::engine(whole_dir.path());
    let (whole_ids, total) = replay(&mut whole, None);

    let dir = tempfile::tempdir().unwrap();
    let crashed_ids = {
        let mut engine = common::engine(dir.path());
        let simulation = sim();
        let events: Vec<_> = simulation.events().take((total / 2) as usize).collect();
        // Process half the stream without ever committing, then "crash" (drop).
        let out = common::run(&mut engine, &events);
        out.alerts
            .into_iter()
            .map(|a| a.alert_id)
            .collect::<BTreeSet<_>>()
    };
    let mut restarted = common::engine(dir.path());
    let (ids, events) = replay(&mut restarted, None);
    assert_eq!(
        events, total,
        "nothing was committed, so everything is processed again"
    );
    let ids: BTreeSet<_> = ids.into_iter().collect();
    assert!(
        crashed_ids.is_subset(&ids),
        "alerts from before the crash reappear with the same ids"
    );
    assert_eq!(ids, whole_ids.into_iter().collect());
    let counted: u64 = all_states(&restarted)
        .iter()
        .map(|(_, s)| s.baseline.events)
        .sum();
    assert_eq!(counted, total);
}

#[test]
fn stored_state_stays_within_budget_on_realistic_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    replay(&mut engine, None);
    let mut sizes: Vec<usize> = all_states(&engine)
        .iter()
        .map(|(_, state)| {
            let mut bytes = Vec::new();
            agentwatch::state::encode_state(state, &mut bytes).unwrap();
            bytes.len()
        })
        .collect();
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    let max = *sizes.last().unwrap();
    assert!(median <= 1024, "typical agent stores {median} bytes");
    // Exploratory agents fill their bounded tables; they must still be bounded.
    assert!(max <= 4096, "largest agent stores {max} bytes");
}
