//! Flags of the small commands: `keygen`, `verify`, `inspect` and `schemas`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::usage;
use crate::app::inspect::render_inspection;
use crate::app::setup;
use crate::app::verify::verify_commands;
use crate::error::{Error, Result};
use crate::model::time::parse_rfc3339;
use crate::signing::Verifier;
use crate::state::StateStore;

/// Make an Ed25519 key pair for signing commands: PREFIX.key (secret, mode 0600)
/// and PREFIX.pub (for enforcers).
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Path prefix of the two files.
    #[arg(long, default_value = "agentwatch")]
    out: PathBuf,
}

/// Writes the key pair and says where.
pub fn keygen(args: KeygenArgs) -> Result<()> {
    let files = crate::signing::write_key_pair(&args.out)?;
    println!(
        "key {}: signing key {} (secret; point [signing] key_file or --signing-key at it), public key {} (for enforcers)",
        files.key_id,
        files.secret.display(),
        files.public.display()
    );
    Ok(())
}

/// Sign approval or registry records read on stdin so that trusted_keys accept them.
#[derive(Debug, clap::Args)]
pub struct SignRecordArgs {
    /// The signing key file written by `keygen` (default: $AGENTWATCH_SIGNING_KEY).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The records' contract (default: told by their fields; an `approval_id` makes an
    /// approval).
    #[arg(long, value_enum)]
    kind: Option<RecordKindArg>,
}

/// The contracts `sign-record` signs.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RecordKindArg {
    /// agent-approval v1.
    Approval,
    /// agent-record v1 (the agent registry).
    Registry,
}

/// Signs the records on stdin and writes them to stdout.
pub fn sign_record(args: SignRecordArgs) -> Result<()> {
    let Some(signer) = crate::signing::Signer::resolve(args.key.as_deref())? else {
        return Err(usage(format!(
            "say which key signs: --key FILE (or set ${})",
            crate::signing::SIGNING_KEY_ENV
        )));
    };
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input)
        .map_err(|e| Error::io("reading records from stdin", e))?;
    let kind = args.kind.map(|kind| match kind {
        RecordKindArg::Approval => crate::signing::RecordKind::Approval,
        RecordKindArg::Registry => crate::signing::RecordKind::AgentRecord,
    });
    let signed = crate::app::sign_record::sign_records(
        &signer,
        kind,
        &input,
        &mut std::io::stdout().lock(),
    )?;
    eprintln!("signed {signed} record(s) with key {}", signer.key_id());
    Ok(())
}

/// Check signed commands (JSON lines) the way an enforcer must before acting on
/// them; exits non-zero if any is tampered with, unsigned, signed by another key
/// or expired.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The public key file written by `keygen`.
    #[arg(long)]
    public_key: PathBuf,
    /// Commands file, or - for stdin.
    #[arg(long, default_value = "-")]
    input: String,
    /// Check expiry as of this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
}

/// Verifies every command; fails unless all are valid.
pub fn verify(args: VerifyArgs) -> Result<()> {
    let verifier = Verifier::load(&args.public_key)?;
    let now_ms = match &args.at {
        Some(text) => parse_rfc3339(text)
            .ok_or_else(|| usage(format!("--at {text:?} is not an RFC 3339 time")))?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let input = &args.input;
    let mut reader: Box<dyn BufRead> = if input == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(
            File::open(input).map_err(|e| Error::io(format!("opening {input}"), e))?,
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
            return Err(usage(format!("no commands in {input}")));
        }
        return Err(usage(format!(
            "{} command(s) failed verification: do not act on them",
            report.rejected.len()
        )));
    }
    Ok(())
}

/// Show what the engine believes is normal for an agent, its recent alerts and its
/// registry record.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
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
}

/// Prints the agent's learned state.
pub fn inspect(args: InspectArgs) -> Result<()> {
    let detectors = setup::detectors(args.detectors.as_deref())?;
    let registry = args
        .registry
        .as_deref()
        .map(|path| setup::registry_file(path, None, None))
        .transpose()?;
    let store = StateStore::open_read_only(&args.state)?;
    let agent = store.load_agent(&args.agent_id)?;
    let record = registry.as_ref().and_then(|r| r.agent(&args.agent_id));
    print!(
        "{}",
        render_inspection(&args.agent_id, agent.as_ref(), record, &detectors)
    );
    Ok(())
}

/// Generate or check the JSON Schemas of the wire formats.
#[derive(Debug, clap::Args)]
pub struct SchemasArgs {
    /// Write schemas into --dir.
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Fail if the files in --dir differ from the generated schemas.
    #[arg(long)]
    check: bool,
    /// Schema directory.
    #[arg(long, default_value = "schemas")]
    dir: PathBuf,
}

/// Writes or checks the schema files.
pub fn schemas(args: SchemasArgs) -> Result<()> {
    if args.write {
        for path in crate::schema::write(&args.dir)? {
            println!("wrote {}", path.display());
        }
    } else if args.check {
        crate::schema::check(&args.dir)?;
        println!("{}: schemas are up to date", args.dir.display());
    } else {
        return Err(usage("say --write or --check"));
    }
    Ok(())
}
