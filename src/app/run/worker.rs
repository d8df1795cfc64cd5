//! The engine thread of `agentwatch run`: decodes record batches, runs the engine,
//! queues outputs, and commits state and offsets after the outputs are acknowledged.
//!
//! It owns every piece of state that must change together (engine, producer, consumed
//! positions), so nothing here is shared or locked; the consumer thread talks to it only
//! through [`Job`]s, in order, which is what lets a revocation wait for exactly the
//! batches consumed before it.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::approvals::ApprovalFeed;
use super::changelog::Changelog;
use super::registry::RegistryFeed;
use super::report::{LatencySummary, RunReport};
use crate::config::Topics;
use crate::error::{Error, Result};
use crate::kafka::batch::RecordBatch;
use crate::kafka::consumer::Partition;
use crate::kafka::producer::{Output, OutputProducer};
use crate::kafka::{dead_letter, source_name};
use crate::model::{decode_event, DecodeError, Limits, TimeBounds, Watermark};
use crate::pipeline::{Engine, Outputs};
use crate::telemetry::Metrics;

/// How long one delivery wait may take during normal operation before it is logged and
/// retried: the service never moves past undelivered outputs.
const SETTLE_SLICE: Duration = Duration::from_secs(10);

/// Offsets made durable in RocksDB, for the consumer thread to commit to the group.
pub(super) type Landed = Arc<Mutex<Option<Vec<(Partition, u64)>>>>;

/// What the consumer thread asks of the engine thread.
pub(super) enum Job {
    /// Process these records.
    Batch(RecordBatch),
    /// Deliver, commit and wait for the write; answer with the durable offsets. With
    /// partitions, also forget them (they are being revoked).
    Commit {
        revoked: Vec<Partition>,
        reply: SyncSender<Result<Vec<(Partition, u64)>>>,
    },
    /// A partition of the events topic was assigned: bring its agents' state up to date
    /// (from the changelog if the local state is missing or behind) and answer with the
    /// offset to start from (`None`: the group's offset or the reset policy).
    Start {
        partition: i32,
        reply: SyncSender<Result<Option<u64>>>,
    },
}

/// Engine-thread settings.
pub(super) struct WorkerOptions {
    pub topics: Topics,
    pub limits: Limits,
    pub flush_interval: Duration,
    pub settle_budget: Duration,
    pub progress_interval: Duration,
    pub time: TimeBounds,
}

/// The engine and everything that must change together with it.
pub(super) struct Worker {
    engine: Engine,
    producer: OutputProducer,
    metrics: Arc<Metrics>,
    options: WorkerOptions,
    outputs: Outputs,
    /// Next offset per partition of the events topic, as processed.
    positions: BTreeMap<i32, u64>,
    /// Latest accepted event time per partition of the events topic.
    watermarks: BTreeMap<i32, Watermark>,
    /// Offsets of the state batch being written in the background.
    in_flight: Option<Vec<(Partition, u64)>>,
    dirty: bool,
    report: RunReport,
    first_record: Option<Instant>,
    last_record: Option<Instant>,
    latency: hdrhistogram::Histogram<u64>,
    scratch: Vec<u8>,
    registry: RegistryFeed,
    approvals: ApprovalFeed,
    changelog: Option<Changelog>,
}

impl Worker {
    pub(super) fn new(
        engine: Engine,
        producer: OutputProducer,
        metrics: Arc<Metrics>,
        options: WorkerOptions,
        registry: RegistryFeed,
        approvals: ApprovalFeed,
        changelog: Option<Changelog>,
    ) -> Result<Self> {
        let latency =
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| {
                Error::InvalidInput {
                    context: "latency histogram".into(),
                    detail: e.to_string(),
                }
            })?;
        Ok(Worker {
            engine,
            producer,
            metrics,
            options,
            outputs: Outputs::default(),
            positions: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            in_flight: None,
            dirty: false,
            report: RunReport::default(),
            first_record: None,
            last_record: None,
            latency,
            scratch: Vec::with_capacity(2048),
            registry,
            approvals,
            changelog,
        })
    }

    /// Serves jobs until the consumer thread hangs up; commits on its own every
    /// `flush_interval`. Returns the run's report, or the first error that stopped it.
    pub(super) fn serve(
        mut self,
        jobs: Receiver<Job>,
        recycle: SyncSender<RecordBatch>,
        landed: Landed,
    ) -> Result<RunReport> {
        let mut last_commit = Instant::now();
        let mut last_progress = (Instant::now(), 0u64);
        loop {
            let wait = self
                .options
                .flush_interval
                .saturating_sub(last_commit.elapsed());
            let received = jobs.recv_timeout(wait);
            self.registry.poll(&mut self.engine, &self.metrics);
            self.approvals.poll(&mut self.engine, &self.metrics);
            match received {
                Ok(Job::Batch(mut batch)) => {
                    self.process(&batch)?;
                    batch.clear();
                    let _ = recycle.try_send(batch);
                }
                Ok(Job::Commit { revoked, reply }) => {
                    let result = self.commit(self.options.settle_budget, true);
                    let revoked: Vec<i32> = revoked.iter().map(|(_, p)| *p).collect();
                    for partition in &revoked {
                        self.positions.remove(partition);
                        self.watermarks.remove(partition);
                    }
                    if let Some(changelog) = &mut self.changelog {
                        changelog.release(&revoked);
                    }
                    let failed = result.is_err();
                    let _ = reply.send(result);
                    if failed {
                        return Err(Error::Stopped(
                            "a commit failed (its error was returned to the caller)".into(),
                        ));
                    }
                }
                Ok(Job::Start { partition, reply }) => {
                    let start = match &mut self.changelog {
                        Some(changelog) => {
                            changelog.start(&mut self.engine, &self.metrics, partition)
                        }
                        None => self
                            .engine
                            .offset(&source_name(&self.options.topics.events, partition)),
                    };
                    let _ = reply.send(start);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_commit.elapsed() >= self.options.flush_interval {
                match self.commit(SETTLE_SLICE.min(self.options.settle_budget), false) {
                    Ok(offsets) if !offsets.is_empty() => {
                        if let Ok(mut slot) = landed.lock() {
                            *slot = Some(offsets);
                        }
                    }
                    Ok(_) => {}
                    Err(Error::Undelivered {
                        count, last_error, ..
                    }) => {
                        tracing::warn!(count, %last_error, "outputs still undelivered; state and offsets held back");
                    }
                    Err(error) => return Err(error),
                }
                last_commit = Instant::now();
            }
            if last_progress.0.elapsed() >= self.options.progress_interval {
                self.log_progress(&mut last_progress);
            }
        }
        self.engine.wait_for_commit()?;
        Ok(self.finish())
    }

    fn process(&mut self, batch: &RecordBatch) -> Result<()> {
        self.first_record.get_or_insert_with(Instant::now);
        // Processing time: event times are bounded against it, and commands expire
        // counting from it when their event is late.
        let now_ms = wall_clock_ms();
        let bounds = self.options.time;
        let mut events = Vec::with_capacity(batch.len());
        for record in batch.records() {
            let payload = batch.payload(record);
            let watermark = self.watermarks.entry(record.partition).or_default();
            let key = batch.key(record);
            let admitted = decode_event(payload, &self.options.limits).and_then(|event| {
                if key.is_some_and(|key| key != event.agent_id.as_bytes()) {
                    return Err(DecodeError::KeyMismatch);
                }
                watermark.admit(event.time_ms, &bounds, Some(now_ms))?;
                Ok(event)
            });
            match admitted {
                Ok(event) => {
                    let fresh = self.changelog.as_mut().is_none_or(|changelog| {
                        changelog.admit(&event.agent_id, record.partition, record.offset)
                    });
                    if fresh {
                        events.push(event);
                    } else {
                        self.report.already_applied += 1;
                    }
                }
                Err(error) => {
                    tracing::debug!(
                        partition = record.partition,
                        offset = record.offset,
                        code = error.code(),
                        "event rejected to the dead-letter topic"
                    );
                    self.dead_letter(batch, record, &error)?;
                }
            }
            let previous = self
                .positions
                .insert(record.partition, record.offset as u64 + 1);
            if previous.is_none_or(|next| next != record.offset as u64) {
                // A start, or a jump (compaction, transaction markers, or a broker that
                // skipped records): worth seeing when debugging offsets.
                tracing::debug!(partition = record.partition, offset = record.offset, expected = ?previous, "consuming from");
            }
        }
        self.outputs.clear();
        self.engine.set_processing_ms(Some(now_ms));
        self.engine.process_batch(&events, &mut self.outputs)?;
        drop(events);
        self.publish_outputs()?;
        self.report.consumed += batch.len() as u64;
        self.report.alerts += self.outputs.alerts.len() as u64;
        self.report.commands += self.outputs.commands.len() as u64;
        self.dirty = true;
        self.record_latency(batch);
        Ok(())
    }

    /// Sends a rejected record to the dead-letter topic, unchanged, with headers naming
    /// the error code and where it came from; counts it as invalid.
    fn dead_letter(
        &mut self,
        batch: &RecordBatch,
        record: &crate::kafka::batch::Record,
        error: &DecodeError,
    ) -> Result<()> {
        self.metrics.record_invalid(error);
        self.metrics.record_dead_letter(error.code());
        let headers = dead_letter::headers(&self.options.topics.events, record, error);
        self.producer.send(
            Output::DeadLetter,
            &self.options.topics.dlq,
            batch.key(record),
            batch.payload(record),
            Some(headers),
        )?;
        self.report.dead_letters += 1;
        Ok(())
    }

    fn publish_outputs(&mut self) -> Result<()> {
        let topics = &self.options.topics;
        let alerts = self.outputs.alerts.iter().map(|a| (a.agent_id.as_str(), a));
        publish(
            &self.producer,
            &mut self.scratch,
            Output::Alert,
            &topics.alerts,
            alerts,
        )?;
        let commands = self
            .outputs
            .commands
            .iter()
            .map(|c| (c.agent_id.as_str(), c));
        publish(
            &self.producer,
            &mut self.scratch,
            Output::Command,
            &topics.commands,
            commands,
        )
    }

    /// Record timestamp to now, per record; timestamps have millisecond resolution.
    fn record_latency(&mut self, batch: &RecordBatch) {
        self.last_record = Some(Instant::now());
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        for record in batch.records() {
            if let Some(created_ms) = record.timestamp_ms {
                let latency_us = (now_us - created_ms * 1000).max(0) as u64;
                self.latency.saturating_record(latency_us);
                self.metrics
                    .record_decision_latency(Duration::from_micros(latency_us));
            }
        }
    }

    /// Waits for outputs to be acknowledged, then hands the changed states and the next
    /// offsets, as one RocksDB batch, to the background writer. With `wait`, also waits
    /// for that write. Returns the offsets known to be durable in RocksDB now.
    fn commit(&mut self, settle_budget: Duration, wait: bool) -> Result<Vec<(Partition, u64)>> {
        let mut landed = None;
        if self.dirty {
            self.producer.settle(settle_budget)?;
            let events = &self.options.topics.events;
            let positions: Vec<_> = self
                .positions
                .iter()
                .map(|(partition, next)| (source_name(events, *partition), *next))
                .collect();
            // Waits for the previous batch, which has therefore landed. Each agent state
            // goes to the changelog too, then every partition's position closes the
            // commit there; the next commit's settle waits for them.
            let producer = &self.producer;
            let partition_positions = &self.positions;
            let mut changelog = self.changelog.as_mut();
            self.engine
                .commit_in_background(&positions, &mut |agent, encoded| match changelog
                    .as_deref_mut()
                {
                    Some(changelog) => {
                        changelog.write_state(producer, partition_positions, agent, encoded)
                    }
                    None => Ok(()),
                })?;
            if let Some(changelog) = &self.changelog {
                changelog.write_positions(&self.producer, &self.positions)?;
                if wait {
                    // Partitions may be handed over next: their new owner must find this
                    // commit in the changelog.
                    self.producer.settle(settle_budget)?;
                }
            }
            let submitted = self
                .positions
                .iter()
                .map(|(partition, next)| ((events.clone(), *partition), *next))
                .collect();
            landed = self.in_flight.replace(submitted);
            self.dirty = false;
        }
        // Nothing new to write but a write in flight: let it land, so that idle periods
        // still report the last offsets for the group commit.
        let wait = wait || (!self.dirty && landed.is_none() && self.in_flight.is_some());
        if wait && self.engine.wait_for_commit()? {
            landed = self.in_flight.take();
        }
        Ok(landed.unwrap_or_default())
    }

    fn log_progress(&mut self, last: &mut (Instant, u64)) {
        let consumed = self.report.consumed;
        let rate = (consumed - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
        tracing::info!(
            events_per_s = rate.round() as u64,
            consumed,
            lag = self.metrics.total_consumer_lag(),
            alerts = self.report.alerts,
            commands = self.report.commands,
            dead_letters = self.report.dead_letters,
            p99_ms = self.latency.value_at_quantile(0.99) as f64 / 1000.0,
            "progress"
        );
        *last = (Instant::now(), consumed);
    }

    fn finish(self) -> RunReport {
        let mut report = self.report;
        report.busy = match (self.first_record, self.last_record) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        };
        report.latency = LatencySummary::of(&self.latency);
        report
    }
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before it).
fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Produces JSON records keyed by agent id, reusing one encoding buffer.
fn publish<'a, T: serde::Serialize + 'a>(
    producer: &OutputProducer,
    scratch: &mut Vec<u8>,
    output: Output,
    topic: &str,
    records: impl Iterator<Item = (&'a str, &'a T)>,
) -> Result<()> {
    for (agent_id, record) in records {
        scratch.clear();
        serde_json::to_writer(&mut *scratch, record)
            .map_err(|e| Error::io("encoding an output record", e.into()))?;
        producer.send(output, topic, Some(agent_id.as_bytes()), scratch, None)?;
    }
    Ok(())
}
