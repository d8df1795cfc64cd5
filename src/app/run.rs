//! `agentwatch run`: the Kafka service.
//!
//! One thread polls the consumer, collects up to [`BATCH`] records, decodes them, runs the
//! engine and queues outputs on the producer. Every `flush_interval` it waits for those
//! outputs to be acknowledged, then writes the changed agent states and the next offsets
//! in one RocksDB batch, then commits the offsets to the group for lag tooling. The
//! librdkafka threads do the network I/O; the engine's work is CPU-bound and blocking, so
//! no async runtime is involved and RocksDB never blocks one.
//!
//! Partition ownership: this process owns whatever the group assigns it; the rebalance
//! callback (run inside `poll` on this same thread) commits the work of revoked
//! partitions before giving them up, and starts assigned ones at the offsets RocksDB
//! holds. All partitions of one process share one engine, which is the only writer of its
//! agents' state; scale-out is more processes in the same group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;

use crate::config::{ServiceConfig, Topics};
use crate::detect::DetectorSet;
use crate::error::{Error, Result};
use crate::kafka::consumer::{commit_to_group, subscribe, Partition, PartitionOwner};
use crate::kafka::producer::{Output, OutputProducer};
use crate::kafka::topics::ensure_topics;
use crate::kafka::{dead_letter, source_name};
use crate::model::{decode_event, Limits};
use crate::pipeline::{Engine, EngineOptions, Outputs};
use crate::state::StateStore;
use crate::telemetry::{Metrics, MetricsServer};

/// Most records handed to the engine at once.
pub const BATCH: usize = 2048;
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long one delivery wait may take during normal operation before it is logged and
/// retried (the service never moves past undelivered outputs).
const SETTLE_SLICE: Duration = Duration::from_secs(10);

/// Options of one run beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop (gracefully) once this many records have been consumed; for load tests and
    /// one-shot backfills.
    pub max_events: Option<u64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Records measured.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Records consumed (valid and invalid).
    pub consumed: u64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Alerts published.
    pub alerts: u64,
    /// Commands published.
    pub commands: u64,
    /// From the first record received to the last one processed.
    pub busy: Duration,
    /// Record timestamp to decision, over the whole run.
    pub latency: LatencySummary,
}

impl RunReport {
    /// Records per second while records were flowing.
    pub fn events_per_second(&self) -> f64 {
        self.consumed as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    /// One line for people.
    pub fn render(&self) -> String {
        format!(
            "consumed {} records in {:.2}s ({:.0}/s), {} dead letters, {} alerts, {} commands; \
             record-to-decision latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.consumed,
            self.busy.as_secs_f64(),
            self.events_per_second(),
            self.dead_letters,
            self.alerts,
            self.commands,
            self.latency.p50_us as f64 / 1000.0,
            self.latency.p99_us as f64 / 1000.0,
            self.latency.p999_us as f64 / 1000.0,
            self.latency.max_us as f64 / 1000.0,
        )
    }
}

/// The engine and everything that must change together with it.
struct Worker {
    engine: Engine,
    producer: OutputProducer,
    metrics: Arc<Metrics>,
    topics: Topics,
    limits: Limits,
    outputs: Outputs,
    /// Next offset per partition of the events topic, as processed.
    positions: BTreeMap<i32, u64>,
    dirty: bool,
    report: RunReport,
    first_record: Option<Instant>,
    last_record: Option<Instant>,
    latency: hdrhistogram::Histogram<u64>,
    scratch: Vec<u8>,
}

impl Worker {
    fn process(&mut self, messages: &[BorrowedMessage<'_>]) -> Result<()> {
        let received = Instant::now();
        self.first_record.get_or_insert(received);
        let mut events = Vec::with_capacity(messages.len());
        for message in messages {
            let payload = message.payload().unwrap_or_default();
            match decode_event(payload, &self.limits) {
                Ok(event) => events.push(event),
                Err(error) => {
                    tracing::debug!(
                        partition = message.partition(),
                        offset = message.offset(),
                        code = error.code(),
                        "event rejected to the dead-letter topic"
                    );
                    self.metrics.record_invalid(&error);
                    self.metrics.record_dead_letter(error.code());
                    self.producer.send(
                        Output::DeadLetter,
                        &self.topics.dlq,
                        message.key(),
                        payload,
                        Some(dead_letter::headers(message, &error)),
                    )?;
                    self.report.dead_letters += 1;
                }
            }
            self.positions
                .insert(message.partition(), message.offset() as u64 + 1);
        }
        self.outputs.clear();
        self.engine.process_batch(&events, &mut self.outputs)?;
        drop(events);
        for alert in &self.outputs.alerts {
            self.scratch.clear();
            serde_json::to_writer(&mut self.scratch, alert)
                .map_err(|e| Error::io("encoding alert", e.into()))?;
            self.producer.send(
                Output::Alert,
                &self.topics.alerts,
                Some(alert.agent_id.as_bytes()),
                &self.scratch,
                None,
            )?;
        }
        for command in &self.outputs.commands {
            self.scratch.clear();
            serde_json::to_writer(&mut self.scratch, command)
                .map_err(|e| Error::io("encoding command", e.into()))?;
            self.producer.send(
                Output::Command,
                &self.topics.commands,
                Some(command.agent_id.as_bytes()),
                &self.scratch,
                None,
            )?;
        }
        self.report.consumed += messages.len() as u64;
        self.report.alerts += self.outputs.alerts.len() as u64;
        self.report.commands += self.outputs.commands.len() as u64;
        self.dirty = true;
        self.record_latency(messages);
        Ok(())
    }

    /// Record timestamp to now, per record; timestamps have millisecond resolution.
    fn record_latency(&mut self, messages: &[BorrowedMessage<'_>]) {
        let now = Instant::now();
        self.last_record = Some(now);
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        for message in messages {
            if let Some(created_ms) = message.timestamp().to_millis() {
                let latency_us = (now_us - created_ms * 1000).max(0) as u64;
                self.latency.saturating_record(latency_us);
                self.metrics
                    .record_decision_latency(Duration::from_micros(latency_us));
            }
        }
    }

    /// Waits for outputs, then commits state and offsets in one RocksDB batch. Returns
    /// the offsets committed (for the group commit).
    fn commit(&mut self, settle_budget: Duration) -> Result<Vec<(Partition, u64)>> {
        if !self.dirty {
            return Ok(Vec::new());
        }
        self.producer.settle(settle_budget)?;
        let sources: Vec<(String, u64)> = self
            .positions
            .iter()
            .map(|(partition, next)| (source_name(&self.topics.events, *partition), *next))
            .collect();
        let offsets: Vec<(&str, u64)> = sources.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        self.engine.commit(&offsets)?;
        self.dirty = false;
        Ok(self
            .positions
            .iter()
            .map(|(partition, next)| ((self.topics.events.clone(), *partition), *next))
            .collect())
    }

    fn latency_summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.latency.len(),
            p50_us: self.latency.value_at_quantile(0.5),
            p99_us: self.latency.value_at_quantile(0.99),
            p999_us: self.latency.value_at_quantile(0.999),
            max_us: self.latency.max(),
        }
    }
}

/// State shared between the service loop and the consumer's callbacks (which run on the
/// same thread, inside `poll`, so the lock is never contended).
struct Service {
    worker: Mutex<Worker>,
    ready: Arc<AtomicBool>,
    settle_budget: Duration,
    /// A failure inside a callback, surfaced by the loop.
    failure: Mutex<Option<Error>>,
}

impl Service {
    fn worker(&self) -> Result<MutexGuard<'_, Worker>> {
        self.worker.lock().map_err(|_| Error::InvalidInput {
            context: "service".into(),
            detail: "worker state poisoned by an earlier panic".into(),
        })
    }

    fn fail(&self, error: Error) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(error);
        }
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

impl PartitionOwner for Service {
    fn stored_offset(&self, topic: &str, partition: i32) -> Result<Option<u64>> {
        self.worker()?.engine.offset(&source_name(topic, partition))
    }

    fn release(&self, partitions: &[Partition]) -> Vec<(Partition, u64)> {
        let outcome = self.worker().and_then(|mut worker| {
            let offsets = worker.commit(self.settle_budget)?;
            for (_, partition) in partitions {
                worker.positions.remove(partition);
            }
            Ok(offsets)
        });
        match outcome {
            Ok(offsets) => offsets,
            Err(error) => {
                tracing::error!(%error, code = error.code(), "could not commit revoked partitions; stopping");
                self.fail(error);
                Vec::new()
            }
        }
    }

    fn assigned(&self, partitions: &[Partition]) {
        self.ready.store(!partitions.is_empty(), Ordering::Relaxed);
        tracing::info!(partitions = ?partitions.iter().map(|(_, p)| p).collect::<Vec<_>>(), "assignment");
    }
}

/// Runs the service until `shutdown` is set (or `options.max_events` are consumed), then
/// finishes the batch in flight, delivers, commits and returns.
pub fn run_service(
    config: &ServiceConfig,
    shutdown: &AtomicBool,
    options: &RunOptions,
) -> Result<RunReport> {
    let detectors = match &config.detectors_dir {
        Some(dir) => DetectorSet::load_dir(dir)?,
        None => DetectorSet::builtin()?,
    };
    let metrics = Arc::new(Metrics::new());
    metrics.register_detectors(detectors.iter().map(|d| d.id.as_str()));
    let server = MetricsServer::start(&config.metrics_listen.to_string(), Arc::clone(&metrics))?;
    let topics = &config.kafka.topics;
    ensure_topics(
        &config.kafka,
        &[
            &topics.events,
            &topics.alerts,
            &topics.commands,
            &topics.dlq,
        ],
    )?;
    let store = StateStore::open(&config.state_dir)?;
    let engine = Engine::new(
        detectors,
        store,
        EngineOptions {
            cache_capacity: config.cache_capacity,
            ..EngineOptions::default()
        },
    )
    .with_metrics(Arc::clone(&metrics));
    let producer = OutputProducer::new(&config.kafka, Some(Arc::clone(&metrics)))?;
    let latency = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| {
        Error::InvalidInput {
            context: "latency histogram".into(),
            detail: e.to_string(),
        }
    })?;
    let service = Arc::new(Service {
        worker: Mutex::new(Worker {
            engine,
            producer,
            metrics: Arc::clone(&metrics),
            topics: topics.clone(),
            limits: Limits {
                max_message_bytes: config.max_event_bytes,
            },
            outputs: Outputs::default(),
            positions: BTreeMap::new(),
            dirty: false,
            report: RunReport::default(),
            first_record: None,
            last_record: None,
            latency,
            scratch: Vec::with_capacity(2048),
        }),
        ready: server.readiness(),
        settle_budget: config.shutdown_timeout,
        failure: Mutex::new(None),
    });
    let consumer = subscribe(
        &config.kafka,
        &topics.events,
        Arc::clone(&service),
        Arc::clone(&metrics),
    )?;
    tracing::info!(brokers = %config.kafka.brokers, group = %config.kafka.group_id, topic = %topics.events, state = %config.state_dir.display(), "service started");

    let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(BATCH);
    let mut last_commit = Instant::now();
    let mut progress = ProgressLog::new(config.progress_interval);
    let mut consumed = 0u64;
    while !shutdown.load(Ordering::Relaxed) {
        if let Some(error) = service.take_failure() {
            return Err(error);
        }
        let mut generation = consumer.context().rebalances();
        let mut wait = POLL_WAIT;
        while batch.len() < BATCH {
            let Some(result) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let now = consumer.context().rebalances();
            if now != generation {
                // Records collected before a rebalance may belong to partitions that were
                // revoked; they are consumed again from the committed offsets.
                batch.clear();
                generation = now;
            }
            match result {
                Ok(message) => batch.push(message),
                Err(error) => tracing::warn!(%error, "consumer error"),
            }
        }
        if !batch.is_empty() {
            consumed += batch.len() as u64;
            service.worker()?.process(&batch)?;
            batch.clear();
        }
        if last_commit.elapsed() >= config.flush_interval {
            commit(&service, shutdown, &consumer, CommitMode::Async)?;
            last_commit = Instant::now();
        }
        progress.maybe_log(&service, &metrics)?;
        if options.max_events.is_some_and(|max| consumed >= max) {
            break;
        }
    }
    tracing::info!("stopping: committing the work in flight");
    drop(batch);
    commit(&service, shutdown, &consumer, CommitMode::Sync)?;
    let report = {
        let worker = service.worker()?;
        let mut report = worker.report.clone();
        report.busy = match (worker.first_record, worker.last_record) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        };
        report.latency = worker.latency_summary();
        report
    };
    server.set_ready(false);
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!(
        consumed = report.consumed,
        dead_letters = report.dead_letters,
        alerts = report.alerts,
        commands = report.commands,
        "stopped"
    );
    Ok(report)
}

fn commit<C: rdkafka::consumer::ConsumerContext>(
    service: &Service,
    shutdown: &AtomicBool,
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    mode: CommitMode,
) -> Result<()> {
    let offsets = loop {
        match service
            .worker()?
            .commit(SETTLE_SLICE.min(service.settle_budget))
        {
            Ok(offsets) => break offsets,
            Err(Error::Undelivered {
                count, last_error, ..
            }) if matches!(mode, CommitMode::Async) && !shutdown.load(Ordering::Relaxed) => {
                // Outputs not yet acknowledged: never move past them; keep waiting.
                tracing::warn!(count, %last_error, "outputs still undelivered; state and offsets held back");
            }
            Err(error) => return Err(error),
        }
    };
    if let Err(error) = commit_to_group(consumer, &offsets, mode) {
        tracing::warn!(%error, "committing offsets to the group failed (state store has them)");
    }
    Ok(())
}

/// The periodic one-line progress log.
struct ProgressLog {
    interval: Duration,
    last: Instant,
    last_consumed: u64,
}

impl ProgressLog {
    fn new(interval: Duration) -> Self {
        ProgressLog {
            interval,
            last: Instant::now(),
            last_consumed: 0,
        }
    }

    fn maybe_log(&mut self, service: &Service, metrics: &Metrics) -> Result<()> {
        if self.last.elapsed() < self.interval {
            return Ok(());
        }
        let worker = service.worker()?;
        let consumed = worker.report.consumed;
        let rate = (consumed - self.last_consumed) as f64 / self.last.elapsed().as_secs_f64();
        tracing::info!(
            events_per_s = rate.round() as u64,
            consumed,
            lag = metrics.total_consumer_lag(),
            alerts = worker.report.alerts,
            commands = worker.report.commands,
            dead_letters = worker.report.dead_letters,
            p99_ms = worker.latency.value_at_quantile(0.99) as f64 / 1000.0,
            "progress"
        );
        self.last = Instant::now();
        self.last_consumed = consumed;
        Ok(())
    }
}
