//! The `agentwatch` command line. Argument parsing and error printing only; every
//! command is implemented in the library (`agentwatch::app`).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use agentwatch::app::demo::{run_demo, DemoOptions};
use agentwatch::app::progress::Progress;
use agentwatch::app::replay::{
    peak_rss_bytes, run_replay, ReplayConfig, ReplaySinks, SCORES_HEADER,
};
use agentwatch::app::run::RunOptions;
use agentwatch::app::simulate::{
    plan_simulation, simulate, write_events, write_plan, SimulateFiles,
};
use agentwatch::app::stream::{stream_events, StreamTarget};
use agentwatch::app::tail::{tail, TailOptions};
use agentwatch::app::verify::verify_commands;
use agentwatch::config::{KafkaConfig, ServiceConfig};
use agentwatch::detect::DetectorSet;
use agentwatch::eval::load_labels;
use agentwatch::identity::Registry;
use agentwatch::model::time::{parse_positive_duration_ms, parse_rfc3339};
use agentwatch::model::TimeBounds;
use agentwatch::pipeline::{Engine, EngineOptions};
use agentwatch::signing::{Signer, Verifier};
use agentwatch::sim::{flat_load, Scenario, SimConfig};
use agentwatch::state::{PositionKey, StateStore};
use agentwatch::telemetry::{init_logging, LogFormat};

#[derive(Parser)]
#[command(
    name = "agentwatch",
    version,
    about = "Zero Trust for AI agents: learn each agent's behaviour, score deviations, answer them."
)]
struct Cli {
    /// Log format on stderr (for `run`, overrides the config file's [log] format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
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
        /// Sign commands with this key (default: $AGENTWATCH_SIGNING_KEY, else a
        /// throwaway key made for this run).
        #[arg(long)]
        signing_key: Option<PathBuf>,
    },
    /// Run a file of agent events through the engine.
    Replay(ReplayArgs),
    /// Write realistic simulated agent traffic with labelled attacks and, by scenario,
    /// legitimate changes.
    #[command(after_help = scenario_help())]
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
    },
    /// Run the Kafka service: consume agent events, publish alerts, commands and dead
    /// letters, keep state and offsets in RocksDB, serve Prometheus metrics.
    Run {
        /// Service config file (TOML; see deploy/agentwatch.toml).
        #[arg(long)]
        config: PathBuf,
        /// Stop gracefully after consuming this many records (load tests, backfills).
        #[arg(long)]
        max_events: Option<u64>,
    },
    /// Print alerts (or commands, or dead letters) from a topic as they arrive.
    Tail {
        /// Kafka brokers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Topic to follow.
        #[arg(long, default_value = "agent-alerts")]
        topic: String,
        /// Start from the oldest retained record instead of new ones.
        #[arg(long)]
        from_beginning: bool,
        /// Print raw JSON.
        #[arg(long)]
        json: bool,
        /// Exit after this many records.
        #[arg(long)]
        max: Option<u64>,
        /// Exit when nothing arrives for this many seconds.
        #[arg(long)]
        idle_exit: Option<f64>,
    },
    /// Check detector files, or a service config file (and the detectors it names);
    /// report every problem with file and line.
    Validate {
        /// Detector directory.
        #[arg(long, default_value = "detectors")]
        detectors: PathBuf,
        /// Service config file to check instead (with the detectors, registry file and
        /// signing key it names).
        #[arg(long, conflicts_with = "registry")]
        config: Option<PathBuf>,
        /// Agent registry file (TOML or JSON) to check instead.
        #[arg(long)]
        registry: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing commands: PREFIX.key (secret, mode 0600)
    /// and PREFIX.pub (for enforcers).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, default_value = "agentwatch")]
        out: PathBuf,
    },
    /// Check signed commands (JSON lines) the way an enforcer must before acting on
    /// them; exits non-zero if any is tampered with, unsigned, signed by another key
    /// or expired.
    Verify {
        /// The public key file written by `keygen`.
        #[arg(long)]
        public_key: PathBuf,
        /// Commands file, or - for stdin.
        #[arg(long, default_value = "-")]
        input: String,
        /// Check expiry as of this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Show what the engine believes is normal for an agent, its recent alerts and its
    /// registry record.
    Inspect {
        /// The agent.
        agent_id: String,
        /// State directory (of `run` or `replay --state`); read-only, safe while running.
        #[arg(long)]
        state: PathBuf,
        /// Registry file to show the agent's record from.
        #[arg(long)]
        registry: Option<PathBuf>,
        /// Detector directory the state was built with (default: the built-in ones).
        #[arg(long)]
        detectors: Option<PathBuf>,
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
    let result = match cli.command {
        Command::Run { config, max_events } => run_service(&config, cli.log_format, max_events),
        command => {
            init_logging(cli.log_format.unwrap_or_default(), "info");
            run(command)
        }
    };
    if let Err(error) = result {
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
            signing_key,
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
                    ..SimConfig::default()
                },
                detectors,
                metrics_addr: Some(metrics_addr),
                pace: Duration::from_secs_f64(pace),
                signing_key,
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
            scenario,
            changes,
            no_attacks,
            registry,
            flat_events,
            to_kafka,
            topic,
            rate,
        } => {
            if agents == 0 || days == 0 {
                bail!("--agents and --days must be at least 1");
            }
            let config = SimConfig {
                agents,
                days,
                seed,
                attacks: !no_attacks,
                scenario,
            };
            let files = SimulateFiles {
                registry: registry.as_deref(),
                labels: labels.as_deref(),
                changes: changes.as_deref(),
            };
            if let (Some(brokers), Some(topic)) = (to_kafka, topic) {
                return stream_simulation(config, flat_events, brokers, topic, rate, files);
            }
            let Some(output) = output else {
                bail!(
                    "say where the events go: --output FILE (or -) or --to-kafka BROKERS --topic T"
                );
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
            let report = simulate(config, files, &mut writer, &mut progress)?;
            eprintln!(
                "wrote {} events for {} agents over {days} days (seed {seed}, scenario {scenario}); {}",
                report.events,
                report.agents,
                report.describe()
            );
            Ok(())
        }
        Command::Run { .. } => unreachable!("handled in main"),
        Command::Tail {
            brokers,
            topic,
            from_beginning,
            json,
            max,
            idle_exit,
        } => {
            let stop = shutdown_flag()?;
            let options = TailOptions {
                kafka: kafka_at(brokers),
                topic,
                from_beginning,
                json,
                max_records: max,
                idle_timeout: idle_exit.map(Duration::from_secs_f64),
            };
            tail(&options, &mut std::io::stdout().lock(), &stop)?;
            Ok(())
        }
        Command::Validate {
            config: Some(path), ..
        } => {
            let config = ServiceConfig::load(&path)?;
            let detectors = match &config.detectors_dir {
                Some(dir) => DetectorSet::load_dir(dir)?,
                None => DetectorSet::builtin()?,
            };
            let registry = match &config.registry.file {
                Some(file) => format!(
                    "{} registered agent(s)",
                    agentwatch::identity::load_file(file)?.len()
                ),
                None => "no registry file".into(),
            };
            let enforced = if config.registry.enforce {
                "registry enforced"
            } else {
                "registry not enforced"
            };
            let signing = match Signer::resolve(config.signing_key_file.as_deref())? {
                Some(signer) => format!("commands signed with key {}", signer.key_id()),
                None => "commands UNSIGNED (no signing key)".into(),
            };
            println!(
                "{}: no problems; brokers {}, group {}, events from {}, state in {}, {} detector(s), {registry} ({enforced}), {signing}",
                path.display(),
                config.kafka.brokers,
                config.kafka.group_id,
                config.kafka.topics.events,
                config.state_dir.display(),
                detectors.len()
            );
            Ok(())
        }
        Command::Validate {
            registry: Some(path),
            ..
        } => {
            let registry = agentwatch::identity::load_file(&path)?;
            println!(
                "{}: {} registered agent(s), no problems",
                path.display(),
                registry.len()
            );
            Ok(())
        }
        Command::Validate { detectors, .. } => {
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
        Command::Keygen { out } => {
            let files = agentwatch::signing::write_key_pair(&out)?;
            println!(
                "key {}: signing key {} (secret; point [signing] key_file or --signing-key at it), public key {} (for enforcers)",
                files.key_id,
                files.secret.display(),
                files.public.display()
            );
            Ok(())
        }
        Command::Verify {
            public_key,
            input,
            at,
        } => verify(&public_key, &input, at.as_deref()),
        Command::Inspect {
            agent_id,
            state,
            registry,
            detectors,
        } => {
            let detectors = match &detectors {
                Some(dir) => DetectorSet::load_dir(dir)?,
                None => DetectorSet::builtin()?,
            };
            let registry = registry.as_deref().map(load_registry).transpose()?;
            let store = StateStore::open_read_only(&state)?;
            let agent = store.load_agent(&agent_id)?;
            let record = registry.as_ref().and_then(|r| r.agent(&agent_id));
            print!(
                "{}",
                agentwatch::app::inspect::render_inspection(
                    &agent_id,
                    agent.as_ref(),
                    record,
                    &detectors
                )
            );
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

/// A flag set by the first SIGTERM or SIGINT; a second one exits at once.
fn shutdown_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("installing signal handlers")?;
    }
    Ok(flag)
}

/// Kafka settings for the client commands (`tail`, `simulate --to-kafka`).
fn kafka_at(brokers: String) -> KafkaConfig {
    KafkaConfig {
        brokers,
        ..ServiceConfig::default().kafka
    }
}

fn run_service(
    config_path: &Path,
    log_format: Option<LogFormat>,
    max_events: Option<u64>,
) -> Result<()> {
    let config = ServiceConfig::load(config_path)?;
    init_logging(log_format.unwrap_or(config.log_format), "info");
    let stop = shutdown_flag()?;
    let report = agentwatch::app::run::run_service(&config, &stop, &RunOptions { max_events })?;
    eprintln!("{}", report.render());
    Ok(())
}

fn verify(public_key: &Path, input: &str, at: Option<&str>) -> Result<()> {
    let verifier = Verifier::load(public_key)?;
    let now_ms = match at {
        Some(text) => {
            parse_rfc3339(text).with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?
        }
        None => chrono::Utc::now().timestamp_millis(),
    };
    let mut reader: Box<dyn BufRead> = if input == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(
            File::open(input).with_context(|| format!("opening {input}"))?,
        ))
    };
    let report = verify_commands(
        &verifier,
        &mut reader,
        now_ms,
        &mut std::io::stdout().lock(),
    )?;
    eprintln!(
        "{} command(s) verified with key {}, {} rejected",
        report.accepted,
        verifier.key_id(),
        report.rejected.len()
    );
    if !report.all_valid() {
        if report.accepted == 0 && report.rejected.is_empty() {
            bail!("no commands in {input}");
        }
        bail!(
            "{} command(s) failed verification: do not act on them",
            report.rejected.len()
        );
    }
    Ok(())
}

/// A clap parser for durations such as `90s`, `1h` or `7d` (milliseconds, above zero).
fn positive_duration_ms(text: &str) -> std::result::Result<i64, String> {
    parse_positive_duration_ms(text)
        .ok_or_else(|| format!("{text:?} is not a positive duration like 30m, 1h or 7d"))
}

/// Loads a registry file and logs what it holds.
fn load_registry(path: &Path) -> Result<Registry> {
    let registry = agentwatch::identity::load_file(path)?;
    tracing::info!(agents = registry.len(), file = %path.display(), "registry loaded");
    Ok(registry)
}

/// The command signer: `--signing-key` if given, else `$AGENTWATCH_SIGNING_KEY`.
/// The `simulate --help` epilogue: every scenario part and what it adds.
fn scenario_help() -> String {
    let mut text = String::from("Scenario parts (combine with commas):\n");
    for (name, what) in Scenario::PARTS {
        text += &format!("  {name:<13} {what}\n");
    }
    text
}

fn signer_from(file: Option<&Path>) -> Result<Option<Arc<Signer>>> {
    let signer = Signer::resolve(file)?;
    if let Some(signer) = &signer {
        tracing::info!(key_id = signer.key_id(), "commands will be signed");
    }
    Ok(signer.map(Arc::new))
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
        bail!("--rate must be a positive number of events per second");
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
            let simulation = plan_simulation(config, files.registry)?;
            write_plan(&simulation, files)?;
            stream_events(simulation.events(), &target, &mut report)?
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
    /// Agent registry (TOML or JSON): turns on identity and policy checks and names
    /// owners on alerts. It is enforced: agents it does not list are flagged as
    /// unregistered_agent.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Use --registry only for the facts it gives about the agents it lists (owners,
    /// boundaries, credentials, working hours); do not flag the agents it leaves out.
    #[arg(long, requires = "registry")]
    no_enforce_registry: bool,
    /// Largest lead of an event over the input's watermark (the latest event time
    /// accepted so far), e.g. 12h or 14d; later events are invalid (time_out_of_range).
    /// It must cover the input's longest quiet period.
    #[arg(long, default_value = "7d", value_parser = positive_duration_ms)]
    max_ahead: i64,
    /// Largest lag of an event behind the input's watermark, e.g. 7d; older events are
    /// invalid (time_out_of_range).
    #[arg(long, default_value = "7d", value_parser = positive_duration_ms)]
    max_behind: i64,
    /// Sign commands with this key (default: $AGENTWATCH_SIGNING_KEY if set).
    #[arg(long)]
    signing_key: Option<PathBuf>,
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
    let mut engine = Engine::new(detectors, store, options)?;
    if let Some(path) = &args.registry {
        let registry = load_registry(path)?.with_enforce(!args.no_enforce_registry);
        engine = engine.with_registry(registry);
    }
    if let Some(signer) = signer_from(args.signing_key.as_deref())? {
        engine = engine.with_signer(signer);
    }
    let (reader, source): (Box<dyn BufRead>, PositionKey) = if args.input == "-" {
        (
            Box::new(BufReader::new(std::io::stdin().lock())),
            PositionKey::replay_stdin(),
        )
    } else {
        let path = Path::new(&args.input);
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        (
            Box::new(BufReader::with_capacity(1 << 20, file)),
            PositionKey::replay_file(&canonical),
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
        time: TimeBounds {
            max_ahead_ms: args.max_ahead,
            max_behind_ms: args.max_behind,
        },
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
        let evaluation = summary.evaluate(&incidents)?;
        eprint!("{}", evaluation.render());
    }
    Ok(())
}
