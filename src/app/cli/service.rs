//! `agentwatch run` and `agentwatch tail` flags: the Kafka service and its reader.

use std::path::PathBuf;
use std::time::Duration;

use super::{kafka_at, shutdown_flag};
use crate::app::run::{run_service, RunOptions};
use crate::app::tail::{tail as follow, TailOptions};
use crate::config::ServiceConfig;
use crate::error::Result;
use crate::telemetry::{init_logging, LogFormat};

/// Run the Kafka service: consume agent events, publish alerts, commands and dead
/// letters, keep state and offsets in RocksDB, serve Prometheus metrics.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Service config file (TOML; see deploy/agentwatch.toml).
    #[arg(long)]
    config: PathBuf,
    /// Stop gracefully after consuming this many records (load tests, backfills).
    #[arg(long)]
    max_events: Option<u64>,
}

/// Runs the service until SIGTERM or SIGINT. Logging starts here, once the config file
/// (which may choose the log format) is read; `log_format` overrides it.
pub fn run(args: RunArgs, log_format: Option<LogFormat>) -> Result<()> {
    let config = ServiceConfig::load(&args.config)?;
    init_logging(log_format.unwrap_or(config.log_format), "info");
    let stop = shutdown_flag()?;
    let options = RunOptions {
        max_events: args.max_events,
    };
    let report = run_service(&config, &stop, &options)?;
    eprintln!("{}", report.render());
    Ok(())
}

/// Print alerts (or commands, or dead letters) from a topic as they arrive.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
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
}

/// Follows the topic, printing to stdout, until interrupted or a limit is reached.
pub fn tail(args: TailArgs) -> Result<()> {
    let stop = shutdown_flag()?;
    let options = TailOptions {
        kafka: kafka_at(args.brokers),
        topic: args.topic,
        from_beginning: args.from_beginning,
        json: args.json,
        max_records: args.max,
        idle_timeout: args.idle_exit.map(Duration::from_secs_f64),
    };
    follow(&options, &mut std::io::stdout().lock(), &stop)?;
    Ok(())
}
