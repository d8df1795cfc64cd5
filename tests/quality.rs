//! The quality bar from the issue, on simulated traffic with a fixed seed:
//! recall of injected incidents ≥ 0.95 and at most 0.5 false alerts per 10,000 events.

mod common;

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
use agentwatch::app::simulate::SimReader;
use agentwatch::eval::Evaluation;
use agentwatch::sim::{SimConfig, Simulation};

#[test]
fn detects_injected_incidents_with_few_false_alerts() {
    let simulation = Simulation::new(SimConfig {
        agents: 200,
        days: 14,
        seed: 42,
        attacks: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    let summary = run_replay(
        &mut engine,
        SimReader::simulation(&simulation),
        &ReplayConfig::default(),
        ReplaySinks {
            output: &mut std::io::sink(),
            scores: None,
        },
        &mut |_| {},
    )
    .unwrap();
    let evaluation = Evaluation::new(&simulation.labels(), &summary.marks, summary.events).unwrap();
    println!("{}{}", summary.render(), evaluation.render());
    assert!(summary.events > 500_000, "{} events", summary.events);
    assert_eq!(evaluation.per_kind.len(), 3);
    for (kind, recall) in &evaluation.per_kind {
        assert!(
            recall.incidents >= 30,
            "{kind}: only {} incidents",
            recall.incidents
        );
        assert!(
            recall.recall() >= 0.95,
            "{kind}: recall {:.3}\n{}",
            recall.recall(),
            evaluation.render()
        );
    }
    assert!(
        evaluation.false_per_10k() <= 0.5,
        "{:.3} false alerts per 10k events\n{}",
        evaluation.false_per_10k(),
        evaluation.render()
    );
}
