//! `agentwatch replay`: a file of events through the same engine the service runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LineBatcher;
use crate::error::{Error, Result};
use crate::eval::{AgentDays, AlertMark, CommandMark, Evaluation, Incident, Observed};
use crate::model::time::{format_rfc3339, parse_rfc3339};
use crate::model::{
    decode_event, CommandAction, DecodeError, Event, Limits, Severity, TimeBounds, Watermark,
};
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

const INVALID_SAMPLES: usize = 20;

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

/// Runs `reader` through `engine`, writing outputs to `sinks`. A bad line never stops
/// a replay: it is counted with its line number and error code. State and the input
/// position are committed together every `commit_every` events and at the end, always
/// after the outputs covering them were flushed.
///
/// Event times are bounded by `config.time` against the input's watermark, which is
/// committed with the position (so a resumed replay judges times exactly as an
/// uninterrupted one). The watermark is also the replay's processing time: each
/// event's commands expire counting from the later of its own time and the watermark
/// after it, whatever the batch boundaries (see [`Engine::set_processing_ms`]).
pub fn run_replay<R: BufRead>(
    engine: &mut Engine,
    reader: R,
    config: &ReplayConfig,
    mut sinks: ReplaySinks<'_>,
    on_batch: &mut dyn FnMut(&BatchReport<'_>),
) -> Result<ReplaySummary> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut lines = LineBatcher::new(reader);
    let resume_at = engine.offset(&config.source)?.unwrap_or(0);
    let watermark_key = config.source.watermark();
    let mut watermark = Watermark::at(
        engine
            .offset(&watermark_key)?
            .and_then(|ms| i64::try_from(ms).ok()),
    );
    if resume_at > 0 {
        let skipped = lines
            .skip(resume_at)
            .map_err(|e| Error::io("skipping already processed input", e))?;
        summary.resumed_from = skipped;
        tracing::info!(source = %config.source, lines = skipped, "resuming after committed position");
    }
    let detector_ids: Vec<String> = engine.detectors().iter().map(|i| i.id.clone()).collect();
    let mut outputs = Outputs::default();
    let mut agent_days = AgentDays::default();
    let mut since_commit = 0u64;
    let mut json = Vec::with_capacity(1024);
    let mut ended = false;
    loop {
        let budget = config.max_lines.map_or(config.batch_size as u64, |max| {
            max.saturating_sub(summary.lines)
                .min(config.batch_size as u64)
        });
        if budget == 0 {
            break;
        }
        if !lines
            .fill(budget as usize)
            .map_err(|e| Error::io("reading input", e))?
        {
            ended = true;
            break;
        }
        summary.lines += lines.lines().len() as u64;
        let first_line = lines.first_line();
        let mut events: Vec<Event<'_>> = Vec::with_capacity(lines.lines().len());
        // The watermark after each accepted event: its processing time.
        let mut processing: Vec<i64> = Vec::with_capacity(lines.lines().len());
        for (offset, line) in lines.lines().iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let admitted = decode_event(line, &config.limits).and_then(|event| {
                let after = watermark.admit(event.time_ms, &config.time, None)?;
                Ok((event, after))
            });
            match admitted {
                Ok((event, after)) => {
                    events.push(event);
                    processing.push(after);
                }
                Err(error) => {
                    invalid(&mut summary, config, first_line + offset as u64, &error);
                }
            }
        }
        outputs.clear();
        process_in_order(engine, &events, &processing, &mut outputs)?;
        for event in &events {
            agent_days.observe(&event.agent_id, event.time_ms);
        }
        summary.agent_days = agent_days.count();
        summary.events += events.len() as u64;
        since_commit += events.len() as u64;
        write_outputs(&outputs, &mut *sinks.output, &mut json)?;
        if let Some(scores) = sinks.scores.as_deref_mut() {
            write_scores(&outputs, &events, &detector_ids, scores)?;
        }
        tally(&outputs, &mut summary);
        let last_event_ms = events.last().map(|e| e.time_ms);
        drop(events);
        summary.elapsed = started.elapsed();
        on_batch(&BatchReport {
            outputs: &outputs,
            last_event_ms,
            summary: &summary,
        });
        if since_commit >= config.commit_every {
            let positions = positions(&config.source, lines.position(), &watermark_key, watermark);
            commit(engine, &mut sinks, &positions)?;
            since_commit = 0;
        }
    }
    if ended {
        // The input has ended, so no approval can arrive any more: events still waiting
        // for one are decided now (see `crate::approvals`). A run cut short by
        // `max_lines` leaves them waiting in the state for the next run.
        outputs.clear();
        engine.release_all(&mut outputs)?;
        write_outputs(&outputs, &mut *sinks.output, &mut json)?;
        tally(&outputs, &mut summary);
    }
    let positions = positions(&config.source, lines.position(), &watermark_key, watermark);
    commit(engine, &mut sinks, &positions)?;
    engine.set_processing_ms(None);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The input's position and watermark, as the state store records them.
fn positions(
    source: &PositionKey,
    position: u64,
    watermark_key: &PositionKey,
    watermark: Watermark,
) -> Vec<(PositionKey, u64)> {
    let mut positions = vec![(source.clone(), position)];
    if let Some(ms) = watermark.get().and_then(|ms| u64::try_from(ms).ok()) {
        positions.push((watermark_key.clone(), ms));
    }
    positions
}

/// Counts a rejected line, keeping the first few for the report.
fn invalid(summary: &mut ReplaySummary, config: &ReplayConfig, line: u64, error: &DecodeError) {
    if let Some(metrics) = &config.metrics {
        metrics.record_invalid(error);
    }
    *summary.invalid_by_code.entry(error.code()).or_default() += 1;
    if summary.invalid_samples.len() < INVALID_SAMPLES {
        summary.invalid_samples.push(InvalidLine {
            line,
            code: error.code(),
            message: error.to_string(),
        });
    }
}

/// Processes `events` so that each one's processing time is the watermark after it
/// (`processing`), however the input was cut into batches. The engine takes one
/// processing time per call and counts expiry from the later of it and event time, so
/// a run of events shares a call as long as one value serves them all: events that
/// advance the watermark are served by any earlier watermark, and a late event needs
/// exactly the watermark in force. In-order input is one call per batch.
fn process_in_order(
    engine: &mut Engine,
    events: &[Event<'_>],
    processing: &[i64],
    outputs: &mut Outputs,
) -> Result<()> {
    let mut start = 0;
    while let Some(&hook) = processing.get(start) {
        let end = (start + 1..events.len())
            .find(|&i| events[i].time_ms < processing[i] && processing[i] != hook)
            .unwrap_or(events.len());
        engine.set_processing_ms(Some(hook));
        let scored = outputs.scores.len();
        engine.process_batch(&events[start..end], outputs)?;
        for row in &mut outputs.scores[scored..] {
            row.event += start;
        }
        start = end;
    }
    Ok(())
}

fn commit(
    engine: &mut Engine,
    sinks: &mut ReplaySinks<'_>,
    positions: &[(PositionKey, u64)],
) -> Result<()> {
    sinks
        .output
        .flush()
        .map_err(|e| Error::io("flushing output", e))?;
    if let Some(scores) = sinks.scores.as_deref_mut() {
        scores
            .flush()
            .map_err(|e| Error::io("flushing scores", e))?;
    }
    engine.commit(positions)?;
    Ok(())
}

fn write_outputs(outputs: &Outputs, out: &mut dyn Write, json: &mut Vec<u8>) -> Result<()> {
    let write_line = |out: &mut dyn Write, json: &mut Vec<u8>| {
        json.push(b'\n');
        out.write_all(json)
            .map_err(|e| Error::io("writing output", e))
    };
    for alert in &outputs.alerts {
        json.clear();
        serde_json::to_writer(&mut *json, alert)
            .map_err(|e| Error::io("encoding alert", e.into()))?;
        write_line(out, json)?;
        for id in &alert.commands {
            if let Some(command) = outputs.commands.iter().find(|c| &c.command_id == id) {
                json.clear();
                serde_json::to_writer(&mut *json, command)
                    .map_err(|e| Error::io("encoding command", e.into()))?;
                write_line(out, json)?;
            }
        }
    }
    Ok(())
}

fn write_scores(
    outputs: &Outputs,
    events: &[Event<'_>],
    detector_ids: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    for row in &outputs.scores {
        let (Some(event), Some(detector)) = (events.get(row.event), detector_ids.get(row.detector))
        else {
            continue;
        };
        writeln!(
            out,
            "{},{},{},{},{:.4}",
            csv_field(&event.event_id),
            csv_field(&event.agent_id),
            format_rfc3339(event.time_ms),
            detector,
            row.score
        )
        .map_err(|e| Error::io("writing scores", e))?;
    }
    Ok(())
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
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
            time_ms: parse_rfc3339(&alert.time).unwrap_or_default(),
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
pub const SCORES_HEADER: &str = "event_id,agent_id,time,detector,score";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
