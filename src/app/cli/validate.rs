//! `agentwatch validate` flags: checks detector files, a registry file or a service
//! config file (with what it names) and says what it found.

use std::path::{Path, PathBuf};

use crate::app::setup;
use crate::config::ServiceConfig;
use crate::detect::DetectorSet;
use crate::error::Result;
use crate::signing::Signer;

/// Check detector files, or a service config file (and the detectors it names);
/// report every problem with file and line.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
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
}

/// Checks what the flags name; prints a summary on stdout, or fails with every problem.
pub fn validate(args: ValidateArgs) -> Result<()> {
    match (&args.config, &args.registry) {
        (Some(path), _) => validate_config(path),
        (None, Some(path)) => {
            let registry = crate::identity::load_file(path)?;
            println!(
                "{}: {} registered agent(s), no problems",
                path.display(),
                registry.len()
            );
            Ok(())
        }
        (None, None) => validate_detectors(&args.detectors),
    }
}

fn validate_detectors(dir: &Path) -> Result<()> {
    let set = DetectorSet::load_dir(dir)?;
    println!(
        "{}: {} enabled detector(s), no problems",
        dir.display(),
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

fn validate_config(path: &Path) -> Result<()> {
    let config = ServiceConfig::load(path)?;
    let detectors = setup::detectors(config.detectors_dir.as_deref())?;
    let registry = match &config.registry.file {
        Some(file) => format!(
            "{} registered agent(s)",
            crate::identity::load_file(file)?.len()
        ),
        None => "no registry file".into(),
    };
    let enforced = if config.registry.enforce {
        "registry enforced"
    } else {
        "registry not enforced"
    };
    // Resolved as `run` resolves it (file, else environment), only to name the key.
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
