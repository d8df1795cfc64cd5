//! `agentwatch replay`: a file of events through the same engine the service runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::drive::jsonl::JsonlSink;
use crate::drive::lines::LineSource;
use crate::drive::{drive, Clock, Commit, DriveOptions, Driver, Published, Sink};
use crate::error::Result;
use crate::eval::{AgentDays, AlertMark, CommandMark, Evaluation, Incident, Observed};
use crate::model::time::parse_rfc3339;
use crate::model::{CommandAction, Limits, Severity, TimeBounds};
use crate::pipeline::{Engine, Outputs};
use crate::state::PositionKey;
use crate::telemetry::Metrics;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Name under which the input position is stored with the state (so a second run
    /// on the same state directory resumes after the last committed line).
    pub source: PositionKey,
    /// Lines decoded and processed together.
    pub batch_size: usize,
    /// Events between state commits.
    pub commit_every: u64,
    /// Decoder limits.
    pub limits: Limits,
    /// Stop after this many lines in this run (the rest is left for a later run).
    pub max_lines: Option<u64>,
    /// Where invalid-line counts go, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
    /// How far event time may stray from the input's watermark (the latest event time
    /// accepted so far); events beyond are invalid lines with code `time_out_of_range`.
    /// The wall clock plays no part, so months-old inputs replay as they are. Default
    /// [`TimeBounds::REPLAY`], whose lead covers an input's nights and weekends.
    pub time: TimeBounds,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            source: PositionKey::replay_stdin(),
            batch_size: 1_024,
            commit_every: 500_000,
            limits: Limits::default(),
            max_lines: None,
            metrics: None,
            time: TimeBounds::REPLAY,
        }
    }
}

/// Where outputs go.
pub struct ReplaySinks<'a> {
    /// Alerts and commands, one JSON object per line (each alert followed by its
    /// commands).
    pub output: &'a mut dyn Write,
    /// `event_id,agent_id,time,detector,score` rows, if wanted.
    pub scores: Option<&'a mut dyn Write>,
}

/// What a batch did, for progress displays.
pub struct BatchReport<'a> {
    /// The batch's outputs.
    pub outputs: &'a Outputs,
    /// Event time of the batch's last valid event.
    pub last_event_ms: Option<i64>,
    /// The summary so far.
    pub summary: &'a ReplaySummary,
}

/// A bad input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: u64,
    /// Decode error code.
    pub code: &'static str,
    /// The decoder's message.
    pub message: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Lines read in this run.
    pub lines: u64,
    /// Valid events processed in this run.
    pub events: u64,
    /// Lines skipped because an earlier run on this state already processed them.
    pub resumed_from: u64,
    /// Invalid lines by code.
    pub invalid_by_code: BTreeMap<&'static str, u64>,
    /// The first invalid lines, for the report.
    pub invalid_samples: Vec<InvalidLine>,
    /// Alerts by detector and severity.
    pub alerts_by: BTreeMap<(String, Severity), u64>,
    /// Commands by action.
    pub commands_by: BTreeMap<CommandAction, u64>,
    /// Alert marks, for evaluation against labels.
    pub marks: Vec<AlertMark>,
    /// Command marks, for naming the healthy agents that were commanded.
    pub command_marks: Vec<CommandMark>,
    /// Distinct (agent, UTC day) pairs with valid events in this run.
    pub agent_days: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Invalid lines in this run.
    pub fn invalid(&self) -> u64 {
        self.invalid_by_code.values().sum()
    }

    /// Alerts in this run.
    pub fn alerts(&self) -> u64 {
        self.alerts_by.values().sum()
    }

    /// Commands in this run.
    pub fn commands(&self) -> u64 {
        self.commands_by.values().sum()
    }

    /// This run's alerts and commands scored against `incidents`: recall per kind,
    /// false alerts per 10,000 events and per agent-day, commanded healthy agents.
    pub fn evaluate(&self, incidents: &[Incident]) -> Result<Evaluation> {
        let observed = Observed {
            events: self.events,
            agent_days: Some(self.agent_days),
            commands: Some(&self.command_marks),
        };
        Evaluation::of(incidents, &self.marks, observed)
    }

    /// Events per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "replayed {} events from {} lines in {:.2} s ({:.0} events/s){}",
            self.events,
            self.lines,
            self.elapsed.as_secs_f64(),
            self.events_per_second(),
            if self.resumed_from > 0 {
                format!("; resumed after line {}", self.resumed_from)
            } else {
                String::new()
            }
        );
        if self.invalid() > 0 {
            let codes: Vec<String> = self
                .invalid_by_code
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "invalid lines: {} ({})",
                self.invalid(),
                codes.join(", ")
            );
            for bad in &self.invalid_samples {
                let _ = writeln!(out, "  line {}: {}: {}", bad.line, bad.code, bad.message);
            }
            if self.invalid() > self.invalid_samples.len() as u64 {
                let _ = writeln!(
                    out,
                    "  ... and {} more",
                    self.invalid() - self.invalid_samples.len() as u64
                );
            }
        }
        let _ = writeln!(out, "alerts: {}", self.alerts());
        let mut by_detector: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((detector, severity), n) in &self.alerts_by {
            by_detector
                .entry(detector)
                .or_default()
                .push(format!("{} {n}", severity.as_str()));
        }
        for (detector, counts) in by_detector {
            let _ = writeln!(out, "  {detector:<14} {}", counts.join(", "));
        }
        let commands: Vec<String> = self
            .commands_by
            .iter()
            .map(|(action, n)| format!("{} {n}", action.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "commands: {}{}",
            self.commands(),
            if commands.is_empty() {
                String::new()
            } else {
                format!(" ({})", commands.join(", "))
            }
        );
        out
    }
}

/// Runs `reader` through `engine`, writing outputs to `sinks`: the [`drive`] loop with
/// a [`LineSource`] and a [`JsonlSink`]. A bad line never stops a replay: it is counted
/// with its line number and error code. State and the input position are committed
/// together every `commit_every` events and at the end, always after the outputs
/// covering them were flushed.
///
/// Event times are bounded by `config.time` against the input's watermark, which is
/// committed with the position (so a resumed replay judges times exactly as an
/// uninterrupted one). The watermark is also the replay's processing time: each
/// event's commands expire counting from the later of its own time and the watermark
/// after it, whatever the batch boundaries (see [`Engine::set_processing_ms`]).
pub fn run_replay<R: BufRead + Send>(
    engine: &mut Engine,
    reader: R,
    config: &ReplayConfig,
    sinks: ReplaySinks<'_>,
    on_batch: &mut dyn FnMut(&BatchReport<'_>),
) -> Result<ReplaySummary> {
    let started = Instant::now();
    // The input is read on a thread of this scope (see `drive::ahead`).
    std::thread::scope(|scope| {
        let mut source = LineSource::new(scope, reader, config.source.clone())
            .batch_size(config.batch_size)
            .max_lines(config.max_lines);
        let sink = Reporting {
            inner: JsonlSink::new(sinks.output, sinks.scores),
            summary: ReplaySummary::default(),
            agent_days: AgentDays::default(),
            started,
            on_batch,
        };
        let options = DriveOptions {
            limits: config.limits,
            time: config.time,
            clock: Clock::Watermark,
            commit: Commit::EveryEvents(config.commit_every),
            metrics: config.metrics.clone(),
        };
        let mut driver = Driver::new(engine, sink, options);
        drive(&mut source, &mut driver)?;
        let mut summary = driver.into_sink().summary;
        summary.lines = source.lines_read();
        summary.resumed_from = source.resumed_from();
        summary.elapsed = started.elapsed();
        Ok(summary)
    })
}

/// The replay's [`Sink`]: JSON lines (and scores) through [`JsonlSink`], plus the
/// summary and the caller's per-batch report.
struct Reporting<'w, 'f> {
    inner: JsonlSink<&'w mut dyn Write, &'w mut dyn Write>,
    summary: ReplaySummary,
    agent_days: AgentDays,
    started: Instant,
    on_batch: &'f mut dyn FnMut(&BatchReport<'_>),
}

impl<R: ?Sized> Sink<R> for Reporting<'_, '_> {
    fn publish(&mut self, batch: &Published<'_, '_>) -> Result<()> {
        Sink::<R>::publish(&mut self.inner, batch)?;
        tally(batch.outputs, &mut self.summary);
        if batch.end_of_input {
            return Ok(());
        }
        for event in batch.events {
            self.agent_days.observe(&event.agent_id, event.time_ms);
        }
        let summary = &mut self.summary;
        summary.agent_days = self.agent_days.count();
        summary.events = batch.stats.events;
        if summary.invalid_samples.len() < batch.stats.invalid_samples.len()
            || summary.invalid() != batch.stats.invalid()
        {
            summary
                .invalid_by_code
                .clone_from(&batch.stats.invalid_by_code);
            summary.invalid_samples = batch
                .stats
                .invalid_samples
                .iter()
                .map(|bad| InvalidLine {
                    line: bad.at.offset,
                    code: bad.code,
                    message: bad.message.clone(),
                })
                .collect();
        }
        summary.elapsed = self.started.elapsed();
        (self.on_batch)(&BatchReport {
            outputs: batch.outputs,
            last_event_ms: batch.events.last().map(|e| e.time_ms),
            summary,
        });
        Ok(())
    }

    fn settle(&mut self, budget: Duration) -> Result<()> {
        Sink::<R>::settle(&mut self.inner, budget)
    }
}

fn tally(outputs: &Outputs, summary: &mut ReplaySummary) {
    for alert in &outputs.alerts {
        *summary
            .alerts_by
            .entry((alert.detector.id.clone(), alert.severity))
            .or_default() += 1;
        summary.marks.push(AlertMark {
            agent_id: alert.agent_id.clone(),
            time_ms: alert.time.millis(),
            detector: alert.detector.id.clone(),
        });
    }
    for command in &outputs.commands {
        *summary.commands_by.entry(command.action).or_default() += 1;
        let alert = outputs
            .alerts
            .iter()
            .find(|a| a.alert_id == command.reason.alert_id);
        summary.command_marks.push(CommandMark {
            agent_id: command.agent_id.clone(),
            time_ms: parse_rfc3339(&command.time).unwrap_or_default(),
            action: command.action,
            detector: alert.map(|a| a.detector.id.clone()).unwrap_or_default(),
            system: alert.and_then(|a| a.evidence.context.get("system").cloned()),
        });
    }
}

/// Header of the `--scores` CSV.
pub use crate::drive::jsonl::SCORES_HEADER;

/// Peak resident memory of this process in bytes (Linux `ru_maxrss`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we pass, which is sized for it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: getrusage returned 0, so it initialised the struct.
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024)
}
