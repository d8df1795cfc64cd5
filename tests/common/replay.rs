//! Replaying a simulation through the engine and scoring it, shared by the quality and
//! scenario tests.

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks, ReplaySummary};
use agentwatch::app::simulate::SimReader;
use agentwatch::eval::Evaluation;
use agentwatch::model::Alert;
use agentwatch::pipeline::Engine;
use agentwatch::sim::Simulation;

/// What a replay of a simulation produced.
pub struct Replayed {
    /// The replay summary (alert and command marks, agent-days).
    pub summary: ReplaySummary,
    /// Scored against the simulation's labels.
    pub evaluation: Evaluation,
    /// Every alert, for questions the marks cannot answer (which system, which evidence).
    pub alerts: Vec<Alert>,
}

impl Replayed {
    /// The summary and the evaluation, as the CLI prints them.
    pub fn report(&self) -> String {
        format!("{}{}", self.summary.render(), self.evaluation.render())
    }
}

/// Replays the whole simulation through `engine` and scores it against its labels.
pub fn replay(mut engine: Engine, simulation: &Simulation) -> Replayed {
    let mut alerts = Vec::new();
    let summary = run_replay(
        &mut engine,
        SimReader::simulation(simulation),
        &ReplayConfig::default(),
        ReplaySinks {
            output: &mut std::io::sink(),
            scores: None,
        },
        &mut |report| alerts.extend(report.outputs.alerts.iter().cloned()),
    )
    .unwrap();
    let evaluation = summary.evaluate(&simulation.labels()).unwrap();
    Replayed {
        summary,
        evaluation,
        alerts,
    }
}
