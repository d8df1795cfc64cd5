//! The `agentwatch` command line: parses arguments, dispatches, prints errors. Each
//! command's flags and glue live in `agentwatch::app::cli`, its work in its own `app`
//! module, and its engine is assembled by `agentwatch::app::setup`.

use clap::{Parser, Subcommand};

use agentwatch::app::cli::demo::DemoArgs;
use agentwatch::app::cli::replay::ReplayArgs;
use agentwatch::app::cli::service::{RunArgs, TailArgs};
use agentwatch::app::cli::simulate::SimulateArgs;
use agentwatch::app::cli::tools::{
    InspectArgs, KeygenArgs, SchemasArgs, SignRecordArgs, VerifyArgs,
};
use agentwatch::app::cli::validate::ValidateArgs;
use agentwatch::app::cli::{demo, replay, service, simulate, tools, validate};
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
    Demo(DemoArgs),
    /// Run a file of agent events through the engine.
    Replay(ReplayArgs),
    /// Write realistic simulated agent traffic with labelled attacks and, by scenario,
    /// legitimate changes.
    Simulate(SimulateArgs),
    /// Run the Kafka service: consume agent events, publish alerts, commands and dead
    /// letters, keep state and offsets in RocksDB, serve Prometheus metrics.
    Run(RunArgs),
    /// Print alerts (or commands, or dead letters) from a topic as they arrive.
    Tail(TailArgs),
    /// Check detector files, or a service config file (and the detectors it names);
    /// report the problems of every file with file and line.
    Validate(ValidateArgs),
    /// Make an Ed25519 key pair for signing commands: PREFIX.key (secret, mode 0600)
    /// and PREFIX.pub (for enforcers).
    Keygen(KeygenArgs),
    /// Check signed commands (JSON lines) the way an enforcer must before acting on
    /// them; exits non-zero if any is tampered with, unsigned, signed by another key
    /// or expired.
    Verify(VerifyArgs),
    /// Sign approval or registry records read on stdin (one JSON object, a JSON list,
    /// or JSON lines) so that an engine with trusted_keys accepts them; writes them to
    /// stdout.
    SignRecord(SignRecordArgs),
    /// Show what the engine believes is normal for an agent, its recent alerts and its
    /// registry record.
    Inspect(InspectArgs),
    /// Generate or check the JSON Schemas of the wire formats.
    Schemas(SchemasArgs),
}

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        // `run` starts logging once its config file (which may set the format) is read.
        init_logging(cli.log_format.unwrap_or_default(), "info");
    }
    let result = match cli.command {
        Command::Demo(args) => demo::demo(args),
        Command::Replay(args) => replay::replay(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Run(args) => service::run(args, cli.log_format),
        Command::Tail(args) => service::tail(args),
        Command::Validate(args) => validate::validate(args),
        Command::Keygen(args) => tools::keygen(args),
        Command::Verify(args) => tools::verify(args),
        Command::SignRecord(args) => tools::sign_record(args),
        Command::Inspect(args) => tools::inspect(args),
        Command::Schemas(args) => tools::schemas(args),
    };
    if let Err(error) = result {
        exit_with(&anyhow::Error::from(error));
    }
}

/// Prints `error [code]: ...` (usage errors without a code, as clap prints its own) and
/// exits with status 1.
fn exit_with(error: &anyhow::Error) -> ! {
    let code = error
        .downcast_ref::<agentwatch::Error>()
        .map(|e| e.code())
        .filter(|code| *code != "usage")
        .map(|code| format!(" [{code}]"))
        .unwrap_or_default();
    eprintln!("error{code}: {error:#}");
    std::process::exit(1);
}
