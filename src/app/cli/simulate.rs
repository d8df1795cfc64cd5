//! `agentwatch simulate` flags: a file (or stdout) of simulated events, or a stream of
//! them into Kafka.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use super::{kafka_at, usage};
use crate::app::progress::Progress;
use crate::app::simulate::{
    plan_simulation, simulate, write_approvals, write_events, write_plan, SimulateFiles,
};
use crate::error::{Error, Result};
use crate::kafka::stream::{stream_events, StreamTarget};
use crate::sim::{flat_load, ApprovalTally, Scenario, SimConfig};

/// Write realistic simulated agent traffic with labelled attacks and, by scenario,
/// legitimate changes.
#[derive(Debug, clap::Args)]
#[command(after_help = scenario_help())]
pub struct SimulateArgs {
    /// Agents to simulate.
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Days of traffic.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Seed: the same seed gives the same events and labels.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output JSONL file, or - for stdout.
    #[arg(long)]
    output: Option<String>,
    /// Where to write the labelled incidents (JSON).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// What happens to the fleet: attack families and legitimate changes, as a
    /// comma-separated list (e.g. `moderate,outage`; see below).
    #[arg(long, default_value = "strong", conflicts_with = "flat_events")]
    scenario: Scenario,
    /// Where to write the legitimate changes the scenario made (JSON: kind, agents,
    /// start, end, system, detail). They are not incidents.
    #[arg(long, conflicts_with = "flat_events")]
    changes: Option<PathBuf>,
    /// Leave out the attacks.
    #[arg(long)]
    no_attacks: bool,
    /// Write the fleet's agent registry here (TOML, or JSON for .json) and inject
    /// identity and policy attacks too.
    #[arg(long, conflicts_with = "flat_events")]
    registry: Option<PathBuf>,
    /// Write the approval records (agent-approval v1 JSON lines) of the legitimate
    /// high-risk actions here, and inject labelled attacks with forged, foreign,
    /// expired and reused approvals (caught by `replay --approvals FILE`).
    #[arg(long, conflicts_with = "flat_events")]
    approvals: Option<PathBuf>,
    /// Instead of realistic traffic, write this many events spread evenly over
    /// --agents for throughput measurements (no schedules, no attacks).
    #[arg(long, conflicts_with_all = ["labels", "no_attacks"])]
    flat_events: Option<u64>,
    /// Stream the events into Kafka at these brokers instead of writing a file.
    #[arg(
        long,
        value_name = "BROKERS",
        conflicts_with = "output",
        requires = "topic"
    )]
    to_kafka: Option<String>,
    /// Topic for --to-kafka.
    #[arg(long, requires = "to_kafka")]
    topic: Option<String>,
    /// Events per second for --to-kafka (default: as fast as the broker takes them).
    #[arg(long, requires = "to_kafka")]
    rate: Option<f64>,
}

/// The `simulate --help` epilogue: every scenario part and what it adds.
fn scenario_help() -> String {
    let mut text = String::from("Scenario parts (combine with commas):\n");
    for (name, what) in Scenario::PARTS {
        text += &format!("  {name:<13} {what}\n");
    }
    text
}

/// Writes or streams the simulation; reports what it wrote on stderr.
pub fn run(args: SimulateArgs) -> Result<()> {
    let (agents, days, seed, scenario) = (args.agents, args.days, args.seed, args.scenario);
    if agents == 0 || days == 0 {
        return Err(usage("--agents and --days must be at least 1"));
    }
    let config = SimConfig {
        agents,
        days,
        seed,
        attacks: !args.no_attacks,
        scenario,
    };
    let files = SimulateFiles {
        registry: args.registry.as_deref(),
        labels: args.labels.as_deref(),
        changes: args.changes.as_deref(),
        approvals: args.approvals.as_deref(),
    };
    if let (Some(brokers), Some(topic)) = (args.to_kafka, args.topic) {
        return stream_simulation(config, args.flat_events, brokers, topic, args.rate, files);
    }
    let Some(output) = args.output else {
        return Err(usage(
            "say where the events go: --output FILE (or -) or --to-kafka BROKERS --topic T",
        ));
    };
    let mut writer: Box<dyn Write> = if output == "-" {
        Box::new(BufWriter::new(std::io::stdout().lock()))
    } else {
        let file = File::create(&output).map_err(|e| Error::io(format!("creating {output}"), e))?;
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    let mut progress = |n: u64| eprintln!("simulated {n} events");
    if let Some(events) = args.flat_events {
        let written = write_events(flat_load(agents, events, seed), &mut writer, &mut progress)?;
        eprintln!("wrote {written} flat-load events for {agents} agents (seed {seed})");
        return Ok(());
    }
    let report = simulate(config, files, &mut writer, &mut progress)?;
    eprintln!(
        "wrote {} events for {} agents over {days} days (seed {seed}, scenario {scenario}); {}",
        report.events,
        report.agents,
        report.describe()
    );
    Ok(())
}

fn stream_simulation(
    config: SimConfig,
    flat_events: Option<u64>,
    brokers: String,
    topic: String,
    rate: Option<f64>,
    files: SimulateFiles<'_>,
) -> Result<()> {
    if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(usage(
            "--rate must be a positive number of events per second",
        ));
    }
    let target = StreamTarget {
        kafka: kafka_at(brokers),
        topic,
        rate,
    };
    let progress = Progress::new(std::io::stderr().is_terminal());
    let mut report = |sent: u64, per_second: f64| {
        progress.update(|| format!("streamed {sent} events ({per_second:.0}/s)"));
    };
    let started = std::time::Instant::now();
    let sent = match flat_events {
        Some(events) => stream_events(
            flat_load(config.agents, events, config.seed),
            &target,
            &mut report,
        )?,
        None => {
            let simulation = plan_simulation(config, files)?;
            write_plan(&simulation, files)?;
            let mut tally = ApprovalTally::default();
            let events = simulation.events().inspect(|e| tally.observe(e));
            let sent = stream_events(events, &target, &mut report)?;
            if let Some(path) = files.approvals {
                let written = write_approvals(path, &simulation, &tally)?;
                eprintln!("wrote {written} approvals to {}", path.display());
            }
            sent
        }
    };
    progress.clear();
    eprintln!(
        "streamed {sent} events to {} in {:.1}s ({:.0}/s)",
        target.topic,
        started.elapsed().as_secs_f64(),
        sent as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(())
}
