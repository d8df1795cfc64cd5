//! `agentwatch validate` flags: checks detector files, a registry file or a service
//! config file (with what it names: detectors, registry and approvals files, signing
//! key) and says what it found.

use std::path::{Path, PathBuf};

use crate::app::setup;
use crate::approvals::source::load_file;
use crate::config::{ApprovalsConfig, ServiceConfig};
use crate::detect::DetectorSet;
use crate::error::{Error, Result};
use crate::identity::load_signed_file;
use crate::signing::{Signer, TrustedKeys};

/// Check detector files, or a service config file (and the detectors it names);
/// report the problems of every file with file and line.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Detector directory.
    #[arg(long, default_value = "detectors")]
    detectors: PathBuf,
    /// Service config file to check instead (with the detectors, registry file,
    /// approvals file and signing key it names, signatures checked as `run` does).
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
        Some(file) => check_registry_file(file, &config.registry.trusted_keys)?,
        None => "no registry file".into(),
    };
    let approvals = describe_approvals(&config.approvals)?;
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
    let events = if config.kafka.rekey {
        format!(
            "{} (re-keyed by agent through {})",
            config.kafka.topics.events, config.kafka.topics.repartition
        )
    } else {
        config.kafka.topics.events.clone()
    };
    println!(
        "{}: no problems; brokers {}, group {}, events from {events}, state in {}, {} detector(s), {registry} ({enforced}), {approvals}, {signing}",
        path.display(),
        config.kafka.brokers,
        config.kafka.group_id,
        config.state_dir.display(),
        detectors.len()
    );
    Ok(())
}

/// Checks a registry file as `run` loads it: with `[registry] trusted_keys`, a record
/// without a trusted signature is a problem (`run` would leave it out).
fn check_registry_file(file: &Path, trusted_keys: &[String]) -> Result<String> {
    let trust = TrustedKeys::load(trusted_keys)?;
    let found = load_signed_file(file, Some(&trust))?;
    if !found.refused.is_empty() {
        let problems = found.refused.iter().map(|refused| {
            let rejection = &refused.rejection;
            refused_at(file, refused.line, rejection.code(), rejection)
        });
        return Err(Error::Registry(problems.collect()));
    }
    let signed = if trust.is_empty() { "" } else { ", all signed" };
    Ok(format!(
        "{} registered agent(s){signed}",
        found.records.len()
    ))
}

/// Checks the approvals file as `run` loads it (signatures included) and names the
/// approval sources. Any refused record is a problem, with its line.
fn describe_approvals(config: &ApprovalsConfig) -> Result<String> {
    if !config.enabled() {
        return Ok("approvals NOT verified (no [approvals] file or topic)".into());
    }
    let trust = TrustedKeys::load(&config.trusted_keys)?;
    let mut sources = Vec::new();
    if let Some(file) = &config.file {
        let found = load_file(file, Some(&trust))?;
        if !found.problems.is_empty() {
            let problems = found
                .problems
                .iter()
                .map(|problem| refused_at(file, problem.at, problem.error.code(), &problem.error));
            return Err(Error::Approvals(problems.collect()));
        }
        sources.push(format!("{} approval(s) in the file", found.approvals.len()));
    }
    if let Some(topic) = &config.topic {
        sources.push(format!("topic {topic}"));
    }
    let signed = if trust.is_empty() {
        "unsigned accepted"
    } else {
        "signatures required"
    };
    Ok(format!(
        "approvals from {} ({signed})",
        sources.join(" and ")
    ))
}

/// A refused record as a problem: `file:line: record refused (code): why`.
fn refused_at(file: &Path, line: usize, code: &str, why: &dyn std::fmt::Display) -> String {
    format!("{}:{line}: record refused ({code}): {why}", file.display())
}
