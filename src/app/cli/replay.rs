//! `agentwatch replay` flags: opens the input, outputs and state, assembles the engine
//! (see [`crate::app::setup`]) and hands them to [`run_replay`].

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::progress::Progress;
use crate::app::replay::{peak_rss_bytes, run_replay, ReplayConfig, ReplaySinks, SCORES_HEADER};
use crate::app::setup::{self, EngineSetup, WithoutKey};
use crate::error::{Error, Result};
use crate::eval::load_labels;
use crate::model::time::parse_positive_duration_ms;
use crate::model::TimeBounds;
use crate::state::{PositionKey, StateStore};

/// Run a file of agent events through the engine.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
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
    /// Agents kept in memory (as `[state] cache_capacity` does for the service): the
    /// rest are read from --state when their events come. Bounds memory on inputs with
    /// more agents than that.
    #[arg(long, default_value_t = crate::state::DEFAULT_CACHE_CAPACITY as u64, value_parser = clap::value_parser!(u64).range(1..))]
    cache_capacity: u64,
    /// Agent registry (TOML or JSON): turns on identity and policy checks and names
    /// owners on alerts. It is enforced: agents it does not list are flagged as
    /// unregistered_agent.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Use --registry only for the facts it gives about the agents it lists (owners,
    /// boundaries, credentials, working hours); do not flag the agents it leaves out.
    #[arg(long, requires = "registry")]
    no_enforce_registry: bool,
    /// A public key whose signature a --registry record needs to take effect
    /// (repeatable; as `[registry] trusted_keys`). Unsigned or badly signed records
    /// are refused and logged by line.
    #[arg(long, requires = "registry")]
    registry_trusted_key: Vec<String>,
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
    /// Approvals (agent-approval v1; JSON lines or a JSON list): high_risk_action then
    /// accepts only approval_ids they grant. Without it, ANY approval_id passes.
    #[arg(long)]
    approvals: Option<PathBuf>,
    /// How late an approval may be and still cover its action (event time), e.g. 2m.
    #[arg(long, default_value = "2m", value_parser = duration_ms_or_zero, requires = "approvals")]
    approval_grace: i64,
    /// A public key whose signature an approval needs to count (repeatable; key files
    /// written by `keygen`, or base64 lines). Without one, approvals are not
    /// signature-checked.
    #[arg(long, requires = "approvals")]
    trusted_key: Vec<String>,
}

/// A clap parser for durations that may be zero (`0`, `90s`, `2m`).
fn duration_ms_or_zero(text: &str) -> std::result::Result<i64, String> {
    if matches!(text, "0" | "0s") {
        return Ok(0);
    }
    positive_duration_ms(text)
}

/// A clap parser for durations such as `90s`, `1h` or `7d` (milliseconds, above zero).
fn positive_duration_ms(text: &str) -> std::result::Result<i64, String> {
    parse_positive_duration_ms(text)
        .ok_or_else(|| format!("{text:?} is not a positive duration like 30m, 1h or 7d"))
}

/// A file created for writing, buffered.
fn create(path: &Path) -> Result<BufWriter<File>> {
    let file =
        File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Replays the input; prints the summary (and evaluation, with labels) to stderr.
pub fn replay(args: ReplayArgs) -> Result<()> {
    let mut setup = EngineSetup::new(setup::detectors(args.detectors.as_deref())?);
    let labels = args.labels.as_deref().map(load_labels).transpose()?;
    // Without --state, a temporary directory lives as long as this function.
    let temporary;
    let state_dir: &Path = match &args.state {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir()
                .map_err(|e| Error::io("creating a temporary state directory", e))?;
            temporary.path()
        }
    };
    let store = StateStore::open(state_dir)?;
    setup.options.record_scores = args.scores.is_some();
    setup.options.cache_capacity = usize::try_from(args.cache_capacity).unwrap_or(usize::MAX);
    if let Some(path) = &args.registry {
        let trust = crate::signing::TrustedKeys::load(&args.registry_trusted_key)?;
        let registry = setup::registry_file(path, Some(&trust), None)?;
        setup.registry = Some(registry.with_enforce(!args.no_enforce_registry));
    }
    setup.signer = setup::signer(args.signing_key.as_deref(), WithoutKey::Unsigned)?;
    match &args.approvals {
        Some(path) => {
            let trust = crate::signing::TrustedKeys::load(&args.trusted_key)?;
            setup.approvals = Some(crate::app::approvals::load_approval_store(
                path,
                args.approval_grace,
                Some(&trust),
                None,
            )?);
        }
        None => tracing::warn!("{}", crate::app::approvals::UNVERIFIED_WARNING),
    }
    let mut engine = setup.build(store)?;
    // Read on the decoding thread, so `Send`: stdin's handle, not its lock.
    let (reader, source): (Box<dyn BufRead + Send>, PositionKey) = if args.input == "-" {
        (
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            PositionKey::replay_stdin(),
        )
    } else {
        let path = Path::new(&args.input);
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        (
            Box::new(BufReader::with_capacity(1 << 20, file)),
            PositionKey::replay_file(&canonical),
        )
    };
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(create(path)?),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut scores: Option<Box<dyn Write>> = match &args.scores {
        Some(path) => {
            let mut file = create(path)?;
            writeln!(file, "{SCORES_HEADER}")
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
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
    output
        .flush()
        .map_err(|e| Error::io("flushing output", e))?;
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
