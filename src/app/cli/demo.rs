//! `agentwatch demo` flags.

use std::path::PathBuf;
use std::time::Duration;

use super::usage;
use crate::app::demo::{run_demo, DemoOptions};
use crate::error::Result;
use crate::sim::SimConfig;

/// Simulated agent traffic with labelled attacks through the full engine (no Kafka).
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
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
}

/// Runs the demo, printing to stdout.
pub fn demo(args: DemoArgs) -> Result<()> {
    if !(0.0..=3600.0).contains(&args.pace) {
        return Err(usage("--pace must be between 0 and 3600 seconds"));
    }
    let options = DemoOptions {
        sim: SimConfig {
            agents: args.agents,
            days: args.days,
            seed: args.seed,
            attacks: true,
            ..SimConfig::default()
        },
        detectors: args.detectors,
        metrics_addr: Some(args.metrics_addr),
        pace: Duration::from_secs_f64(args.pace),
        signing_key: args.signing_key,
    };
    run_demo(&options, &mut std::io::stdout().lock())?;
    Ok(())
}
