//! `agentwatch demo`: the whole engine on simulated traffic, no Kafka needed, with
//! approvals verified; it ends with the approval loop step by step
//! ([`super::approval_loop`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::approval_loop::{run_approval_loop, LoopOutcome};
use super::progress::Progress;
use super::render::format_alert;
use super::replay::{run_replay, BatchReport, ReplayConfig, ReplaySinks, ReplaySummary};
use super::setup::{self, EngineSetup, WithoutKey};
use super::simulate::SimReader;
use crate::approvals::{Approval, ApprovalStore, ApprovalUpdate};
use crate::config::ApprovalsConfig;
use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::identity::{AgentRecord, Registry};
use crate::model::time::format_short;
use crate::model::Severity;
use crate::pipeline::Outputs;
use crate::sim::{ApprovalTally, SimConfig, Simulation};
use crate::state::{PositionKey, StateStore};
use crate::telemetry::{Metrics, MetricsServer};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// What to simulate.
    pub sim: SimConfig,
    /// Detector directory (`None`: the built-in detectors).
    pub detectors: Option<PathBuf>,
    /// Where to serve `/metrics` (`None`: don't).
    pub metrics_addr: Option<String>,
    /// Wall-clock time to spread the simulated days over (zero: as fast as possible).
    pub pace: Duration,
    /// Signing key file (`None`: `$AGENTWATCH_SIGNING_KEY`, else a throwaway key).
    pub signing_key: Option<PathBuf>,
}

/// What the demo found.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The replay summary.
    pub summary: ReplaySummary,
    /// Quality against the simulation's labels.
    pub evaluation: Evaluation,
    /// What the closing approval loop saw.
    pub approval_loop: LoopOutcome,
}

/// Runs the demo, printing alerts and commands to `out` as they happen and a progress
/// line to stderr.
pub fn run_demo(options: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport> {
    let mut setup = EngineSetup::new(setup::detectors(options.detectors.as_deref())?);
    let state_dir =
        tempfile::tempdir().map_err(|e| Error::io("creating a temporary state directory", e))?;
    let store = StateStore::open(state_dir.path())?;
    let metrics = Arc::new(Metrics::new());
    let server = match &options.metrics_addr {
        Some(addr) => Some(start_metrics(addr, Arc::clone(&metrics))?),
        None => None,
    };
    let simulation = Simulation::with_policy(options.sim).with_approvals();
    let approvals = approval_store(&simulation)?;
    let approval_count = approvals.len();
    let registry = Registry::new(
        simulation
            .registry()
            .into_iter()
            .map(|spec| AgentRecord::compile(spec, true))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::Registry)?,
    );
    setup.signer = setup::signer(options.signing_key.as_deref(), WithoutKey::Throwaway)?;
    let key_id = setup
        .signer
        .as_ref()
        .map(|s| s.key_id().to_owned())
        .unwrap_or_default();
    setup.metrics = Some(Arc::clone(&metrics));
    setup.registry = Some(registry);
    setup.approvals = Some(approvals);
    let mut engine = setup.build(store)?;
    let days = options.sim.days;
    let header = format!(
        "agentwatch demo: {} registered agents over {days} days ({} labelled attacks); {approval_count} approvals verified; commands signed with key {key_id}; state in {}{}\n",
        simulation.agents().len(),
        simulation.attacks().len(),
        state_dir.path().display(),
        server
            .as_ref()
            .map(|s| format!("; metrics at http://{}/metrics", s.address()))
            .unwrap_or_default()
    );
    write_out(out, &header)?;
    if let Some(server) = &server {
        server.set_ready(true);
    }

    let config = ReplayConfig {
        source: PositionKey::named("demo"),
        metrics: Some(Arc::clone(&metrics)),
        ..ReplayConfig::default()
    };
    let started = Instant::now();
    let span_ms = (simulation.end_ms() - simulation.start_ms()).max(1) as f64;
    let progress = Progress::new(std::io::stderr().is_terminal());
    let mut printed = Ok(());
    let mut sink = std::io::sink();
    let summary = run_replay(
        &mut engine,
        SimReader::simulation(&simulation),
        &config,
        ReplaySinks {
            output: &mut sink,
            scores: None,
        },
        &mut |report: &BatchReport<'_>| {
            if printed.is_ok() && !report.outputs.alerts.is_empty() {
                progress.clear();
                printed = print_outputs(out, report.outputs);
            }
            let Some(now_ms) = report.last_event_ms else {
                return;
            };
            let done = (now_ms - simulation.start_ms()) as f64 / span_ms;
            progress.update(|| {
                let day = ((done * f64::from(days)).floor() as u32 + 1).min(days);
                let summary = report.summary;
                format!(
                    "[{:>3.0}%] day {day}/{days}  {}  {} events  {} alerts  {} commands",
                    done * 100.0,
                    format_short(now_ms),
                    summary.events,
                    summary.alerts(),
                    summary.commands()
                )
            });
            let target = options.pace.mul_f64(done.clamp(0.0, 1.0));
            if let Some(wait) = target.checked_sub(started.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_millis(250)));
            }
        },
    )?;
    progress.finish();
    printed?;
    let evaluation = summary.evaluate(&simulation.labels())?;
    let pacing = if options.pace.is_zero() {
        String::new()
    } else {
        format!(
            "(paced to {:.0} s so the output can be followed; --pace 0 runs at full speed)\n",
            options.pace.as_secs_f64()
        )
    };
    write_out(
        out,
        &format!("\n{}{pacing}{}", summary.render(), evaluation.render()),
    )?;
    let approval_loop = run_approval_loop(&mut engine, &simulation, out)?;
    Ok(DemoReport {
        summary,
        evaluation,
        approval_loop,
    })
}

/// The approvals of `simulation` (its legitimate deletes' and its approval attacks'),
/// counted from a first pass over its events, as `simulate --approvals` writes them.
fn approval_store(simulation: &Simulation) -> Result<ApprovalStore> {
    let mut tally = ApprovalTally::default();
    simulation.events().for_each(|event| tally.observe(&event));
    let mut store = ApprovalStore::new(ApprovalsConfig::DEFAULT_GRACE_MS);
    for record in simulation.approvals(&tally) {
        let approval = Approval::compile(record).map_err(|e| Error::InvalidInput {
            context: "simulated approvals".into(),
            detail: e.to_string(),
        })?;
        store.apply(ApprovalUpdate::Upsert(Box::new(approval)));
    }
    Ok(store)
}

fn start_metrics(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsServer> {
    match MetricsServer::start(addr, Arc::clone(&metrics)) {
        Ok(server) => Ok(server),
        Err(e) => {
            tracing::warn!(error = %e, "metrics address busy; using a free loopback port");
            MetricsServer::start("127.0.0.1:0", metrics)
        }
    }
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing demo output", e))
}

fn print_outputs(out: &mut dyn Write, outputs: &Outputs) -> Result<()> {
    for alert in &outputs.alerts {
        if alert.severity >= Severity::Low {
            write_out(out, &format_alert(alert, &outputs.commands))?;
        }
    }
    Ok(())
}
