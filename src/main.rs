//! The `agentwatch` command line. Argument parsing and error printing only; every
//! command is implemented in the library (`agentwatch::app`).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use agentwatch::app::demo::{run_demo, DemoOptions};
use agentwatch::app::progress::Progress;
use agentwatch::app::replay::{
    peak_rss_bytes, run_replay, ReplayConfig, ReplaySinks, SCORES_HEADER,
};
use agentwatch::app::simulate::{simulate, write_events};
use agentwatch::detect::DetectorSet;
use agentwatch::eval::{load_labels, Evaluation};
use agentwatch::pipeline::{Engine, EngineOptions};
use agentwatch::sim::{flat_load, SimConfig};
use agentwatch::state::StateStore;
use agentwatch::telemetry::{init_logging, LogFormat};

#[derive(Parser)]
#[command(
    name = "agentwatch",
    version,
    about = "Zero Trust for AI agents: learn each agent's behaviour, score deviations, answer them."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulated agent traffic with labelled attacks through the full engine (no Kafka).
    Demo {
        /// Agents to simulate.
        #[arg(long, default_value_t = 60)]
        agents: usize,
        /// Days of traffic.
        #[arg(long, default_value_t = 10)]
        days: u32,
        /// Simulation seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Detector directory (default: the built-in detectors).
        #[arg(long)]
        detectors: Option<PathBuf>,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:9464")]
        metrics_addr: String,
        /// Seconds to spread the simulated days over (0: as fast as possible).
        #[arg(long, default_value_t = 15.0)]
        pace: f64,
    },
    /// Run a file of agent events through the engine.
    Replay(ReplayArgs),
    /// Write realistic simulated agent traffic with labelled attacks.
    Simulate {
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
        output: String,
        /// Where to write the labelled incidents (JSON).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Leave out the attacks.
        #[arg(long)]
        no_attacks: bool,
        /// Instead of realistic traffic, write this many events spread evenly over
        /// --agents for throughput measurements (no schedules, no attacks).
        #[arg(long, conflicts_with_all = ["labels", "no_attacks"])]
        flat_events: Option<u64>,
    },
    /// Check detector files; report every problem with file and line.
    Validate {
        /// Detector directory.
        #[arg(long, default_value = "detectors")]
        detectors: PathBuf,
    },
    /// Generate or check the JSON Schemas of the wire formats.
    Schemas {
        /// Write schemas into --dir.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Fail if the files in --dir differ from the generated schemas.
        #[arg(long)]
        check: bool,
        /// Schema directory.
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");
    if let Err(error) = run(cli.command) {
        let code = error
            .downcast_ref::<agentwatch::Error>()
            .map(|e| format!(" [{}]", e.code()))
            .unwrap_or_default();
        eprintln!("error{code}: {error:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo {
            agents,
            days,
            seed,
            detectors,
            metrics_addr,
            pace,
        } => {
            if !(0.0..=3600.0).contains(&pace) {
                bail!("--pace must be between 0 and 3600 seconds");
            }
            let options = DemoOptions {
                sim: SimConfig {
                    agents,
                    days,
                    seed,
                    attacks: true,
                },
                detectors,
                metrics_addr: Some(metrics_addr),
                pace: Duration::from_secs_f64(pace),
            };
            let stdout = std::io::stdout();
            run_demo(&options, &mut stdout.lock())?;
            Ok(())
        }
        Command::Replay(args) => replay(args),
        Command::Simulate {
            agents,
            days,
            seed,
            output,
            labels,
            no_attacks,
            flat_events,
        } => {
            if agents == 0 || days == 0 {
                bail!("--agents and --days must be at least 1");
            }
            let config = SimConfig {
                agents,
                days,
                seed,
                attacks: !no_attacks,
            };
            let mut writer: Box<dyn Write> = if output == "-" {
                Box::new(BufWriter::new(std::io::stdout().lock()))
            } else {
                let file = File::create(&output).with_context(|| format!("creating {output}"))?;
                Box::new(BufWriter::with_capacity(1 << 20, file))
            };
            let mut progress = |n: u64| eprintln!("simulated {n} events");
            if let Some(events) = flat_events {
                let written =
                    write_events(flat_load(agents, events, seed), &mut writer, &mut progress)?;
                eprintln!("wrote {written} flat-load events for {agents} agents (seed {seed})");
                return Ok(());
            }
            let report = simulate(config, &mut writer, labels.as_deref(), &mut progress)?;
            let incidents: Vec<String> = report
                .incidents
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            eprintln!(
                "wrote {} events for {} agents over {days} days (seed {seed}); incidents: {}",
                report.events,
                report.agents,
                if incidents.is_empty() {
                    "none".into()
                } else {
                    incidents.join(", ")
                }
            );
            Ok(())
        }
        Command::Validate { detectors } => {
            let set = DetectorSet::load_dir(&detectors)?;
            println!(
                "{}: {} enabled detector(s), no problems",
                detectors.display(),
                set.len()
            );
            for instance in set.iter() {
                println!(
                    "  {:<14} kind {:<11} {}",
                    instance.id, instance.kind, instance.description
                );
            }
            Ok(())
        }
        Command::Schemas { write, check, dir } => {
            if write {
                for path in agentwatch::schema::write(&dir)? {
                    println!("wrote {}", path.display());
                }
            } else if check {
                agentwatch::schema::check(&dir)?;
                println!("{}: schemas are up to date", dir.display());
            } else {
                bail!("say --write or --check");
            }
            Ok(())
        }
    }
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Input JSONL file, or - for stdin.
    #[arg(long)]
    input: String,
    /// Detector directory (default: the built-in detectors).
    #[arg(long)]
    detectors: Option<PathBuf>,
    /// State directory (RocksDB). Reusing one resumes where the last run stopped.
    /// Default: a temporary directory, removed at the end.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Where alerts and commands go as JSONL (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write every event's per-detector score here as CSV.
    #[arg(long)]
    scores: Option<PathBuf>,
    /// Labelled incidents (JSON) to score recall and false alerts against.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Stop after this many input lines (a later run on the same --state resumes).
    #[arg(long)]
    max_lines: Option<u64>,
}

fn replay(args: ReplayArgs) -> Result<()> {
    let detectors = match &args.detectors {
        Some(dir) => DetectorSet::load_dir(dir)?,
        None => DetectorSet::builtin()?,
    };
    let labels = args.labels.as_deref().map(load_labels).transpose()?;
    // Without --state, a temporary directory lives as long as this function.
    let temporary;
    let state_dir: &Path = match &args.state {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir().context("creating a temporary state directory")?;
            temporary.path()
        }
    };
    let store = StateStore::open(state_dir)?;
    let options = EngineOptions {
        record_scores: args.scores.is_some(),
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(detectors, store, options);
    let (reader, source): (Box<dyn BufRead>, String) = if args.input == "-" {
        (
            Box::new(BufReader::new(std::io::stdin().lock())),
            "replay:-".into(),
        )
    } else {
        let path = Path::new(&args.input);
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        (
            Box::new(BufReader::with_capacity(1 << 20, file)),
            format!("replay:{}", canonical.display()),
        )
    };
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut scores: Option<Box<dyn Write>> = match &args.scores {
        Some(path) => {
            let mut file = BufWriter::with_capacity(
                1 << 20,
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            );
            writeln!(file, "{SCORES_HEADER}")?;
            Some(Box::new(file))
        }
        None => None,
    };
    let progress = Progress::after(std::io::stderr().is_terminal(), Duration::from_secs(3));
    let config = ReplayConfig {
        source,
        max_lines: args.max_lines,
        ..ReplayConfig::default()
    };
    let summary = run_replay(
        &mut engine,
        reader,
        &config,
        ReplaySinks {
            output: &mut output,
            scores: scores.as_mut().map(|s| s as &mut dyn Write),
        },
        &mut |report| {
            progress.update(|| {
                format!(
                    "{} events ({:.0}/s), {} invalid, {} alerts, {} commands",
                    report.summary.events,
                    report.summary.events_per_second(),
                    report.summary.invalid(),
                    report.summary.alerts(),
                    report.summary.commands()
                )
            })
        },
    )?;
    progress.finish();
    output.flush()?;
    eprint!("{}", summary.render());
    if let Some(bytes) = peak_rss_bytes() {
        eprintln!("peak memory: {:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
    }
    if let Some(incidents) = labels {
        let evaluation = Evaluation::new(&incidents, &summary.marks, summary.events)?;
        eprint!("{}", evaluation.render());
    }
    Ok(())
}
