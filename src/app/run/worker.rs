//! The engine thread of `agentwatch run`: the one driver ([`crate::drive`]) with the
//! service's Kafka source and sink. The source is the engine thread's end of the
//! consumer: it yields the record batches the consumer thread hands over, answers the
//! consumer's rebalance requests (commit before a revocation, restore and start offset
//! on an assignment) between batches, and keeps the consumed positions and the
//! changelog. The sink ([`super::sink`]) produces alerts, commands and dead letters.
//!
//! The thread owns every piece of state that must change together (engine, producer,
//! consumed positions), so nothing here is shared or locked; the consumer thread talks
//! to it only through [`Job`]s, in order, which is what lets a revocation wait for
//! exactly the batches consumed before it.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::approvals::ApprovalFeed;
use super::changelog::{Changelog, Start};
use super::registry::RegistryFeed;
use super::report::{LatencySummary, RunReport};
use super::shared::SharedFeeds;
use super::sink::KafkaSink;
use crate::config::Topics;
use crate::drive::{drive, At, Clock, Commit, DriveOptions, Driver, Lanes, Pull, Sink, Source};
use crate::error::{Error, Result};
use crate::kafka::batch::{DecodedRecords, RecordBatch};
use crate::kafka::consumer::Partition;
use crate::kafka::forwarded::{origin, Forwarded};
use crate::kafka::producer::OutputProducer;
use crate::kafka::source_name;
use crate::model::{Event, Limits, TimeBounds, Watermark};
use crate::pipeline::Engine;
use crate::state::PositionKey;
use crate::telemetry::Metrics;

/// How long one delivery wait may take during normal operation before it is logged and
/// retried: the service never moves past undelivered outputs.
const SETTLE_SLICE: Duration = Duration::from_secs(10);

/// Offsets made durable in RocksDB, for the consumer thread to commit to the group.
pub(super) type Landed = Arc<Mutex<Option<Vec<(Partition, u64)>>>>;

/// What the consumer thread asks of the engine thread.
pub(super) enum Job {
    /// Process these records.
    Batch(DecodedRecords),
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
    /// The consumed topic is the rekey router's: second copies are skipped.
    pub rekeyed: bool,
}

/// What the engine thread is fed besides batches: registry and approval changes, and
/// the changelog when it is on.
pub(super) struct Feeds {
    pub registry: RegistryFeed,
    pub approvals: ApprovalFeed,
    pub changelog: Option<Changelog>,
    pub shared: SharedFeeds,
}

/// The engine thread's ends of the channels to and from the consumer thread.
pub(super) struct Channels {
    /// Batches and rebalance requests, in consumption order.
    pub jobs: Receiver<Job>,
    /// Processed batches go back for reuse.
    pub recycle: SyncSender<RecordBatch>,
    /// Offsets made durable, for the consumer thread's group commits.
    pub landed: Landed,
}

/// The engine and everything that must change together with it: the driver's Kafka
/// source and sink, which share the producer (the changelog's records settle with the
/// outputs).
pub(super) struct Worker {
    engine: Engine,
    source: KafkaSource,
    sink: KafkaSink,
    options: DriveOptions,
}

impl Worker {
    pub(super) fn new(
        engine: Engine,
        producer: OutputProducer,
        metrics: Arc<Metrics>,
        options: WorkerOptions,
        feeds: Feeds,
        channels: Channels,
    ) -> Result<Self> {
        let latency =
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| {
                Error::InvalidInput {
                    context: "latency histogram".into(),
                    detail: e.to_string(),
                }
            })?;
        let producer = Arc::new(producer);
        let sink = KafkaSink::new(
            Arc::clone(&producer),
            Arc::clone(&metrics),
            options.topics.clone(),
        );
        let drive_options = DriveOptions {
            limits: options.limits,
            time: options.time,
            clock: Clock::Wall,
            commit: Commit::Background(options.flush_interval),
            metrics: Some(Arc::clone(&metrics)),
        };
        let source = KafkaSource {
            channels,
            producer,
            metrics,
            events: options.topics.events,
            settle_budget: options.settle_budget,
            progress_interval: options.progress_interval,
            positions: BTreeMap::new(),
            rekeyed: options.rekeyed,
            forwarded: Forwarded::default(),
            second_copies: HashSet::new(),
            in_flight: None,
            feeds,
            consumed: 0,
            first_record: None,
            last_record: None,
            latency,
            last_progress: (Instant::now(), 0),
        };
        Ok(Worker {
            engine,
            source,
            sink,
            options: drive_options,
        })
    }

    /// Drives the engine with the batches the consumer thread sends until it hangs up;
    /// commits on its own every `flush_interval`. Returns the run's report, or the first
    /// error that stopped it.
    pub(super) fn serve(mut self) -> Result<RunReport> {
        self.source.feeds.shared.load(&mut self.engine)?;
        let mut driver = Driver::new(&mut self.engine, self.sink, self.options);
        let source = &mut self.source;
        drive(source, &mut driver)?;
        let stats = driver.stats();
        Ok(RunReport {
            consumed: source.consumed,
            dead_letters: stats.invalid(),
            alerts: stats.alerts,
            commands: stats.commands,
            already_applied: stats.skipped,
            busy: match (source.first_record, source.last_record) {
                (Some(first), Some(last)) => last.duration_since(first),
                _ => Duration::ZERO,
            },
            latency: LatencySummary::of(&source.latency),
        })
    }
}

/// The engine thread's end of the consumer, as the driver's [`Source`].
struct KafkaSource {
    channels: Channels,
    /// The sink's producer, for the changelog's records (settled with the outputs).
    producer: Arc<OutputProducer>,
    metrics: Arc<Metrics>,
    /// The events topic.
    events: String,
    settle_budget: Duration,
    progress_interval: Duration,
    /// Next offset per partition of the events topic, as pulled.
    positions: BTreeMap<i32, u64>,
    /// The events come through the rekey router (only then do its headers count: a
    /// dead letter of a rekeyed deployment re-sent to a plain events topic keeps them).
    rekeyed: bool,
    /// Per partition, the next source offsets of what the rekey router forwarded into
    /// it, as pulled: committed with the positions.
    forwarded: Forwarded,
    /// Records of the batch being processed that the router forwarded a second time
    /// (partition, offset): skipped.
    second_copies: HashSet<(i32, u64)>,
    /// Offsets of the state batch being written in the background.
    in_flight: Option<Vec<(Partition, u64)>>,
    feeds: Feeds,
    consumed: u64,
    first_record: Option<Instant>,
    last_record: Option<Instant>,
    latency: hdrhistogram::Histogram<u64>,
    last_progress: (Instant, u64),
}

impl KafkaSource {
    /// Notes the next offset of each record's partition.
    fn track(&mut self, batch: &RecordBatch) {
        for record in batch.records() {
            let previous = self
                .positions
                .insert(record.partition, record.offset as u64 + 1);
            if previous.is_none_or(|next| next != record.offset as u64) {
                // A start, or a jump (compaction, transaction markers, or a broker that
                // skipped records): worth seeing when debugging offsets.
                tracing::debug!(partition = record.partition, offset = record.offset, expected = ?previous, "consuming from");
            }
        }
    }

    /// Commits through the driver (outputs acknowledged first, then the changed states
    /// and the next offsets handed to the background writer); with `wait`, also waits
    /// for that write. Returns the offsets known to be durable in RocksDB now.
    fn commit<K: Sink<DecodedRecords>>(
        &mut self,
        driver: &mut Driver<'_, K>,
        settle_budget: Duration,
        wait: bool,
    ) -> Result<Vec<(Partition, u64)>> {
        let mut landed = None;
        self.share(driver)?;
        // Waits for the previous batch, which has therefore landed.
        if driver.commit(self, settle_budget, wait)? {
            landed = self.in_flight.replace(self.group_positions());
        }
        // Nothing new to write but a write in flight: let it land, so that idle periods
        // still report the last offsets for the group commit.
        let settle = wait || (landed.is_none() && self.in_flight.is_some());
        if settle {
            // That write's changelog records (its states, then the positions that close
            // them) may have been sent after the sink last settled. Offsets handed to
            // the group before they are acknowledged could pass states the changelog
            // never got: a member killed then left a replacement with an empty disk
            // starting at the group's offset, with those events in no state anywhere.
            driver.settle::<DecodedRecords>(settle_budget)?;
            if driver.engine().wait_for_commit()? {
                landed = self.in_flight.take();
            }
        }
        if wait {
            // Everything pulled so far is in the store now. Report every position, not
            // only what this call wrote: the synchronous group commit that follows (on
            // shutdown or revocation) then also repairs an earlier asynchronous one that
            // was lost, instead of leaving the group at a stale offset.
            return Ok(self.group_positions());
        }
        Ok(landed.unwrap_or_default())
    }

    /// Notes where each forwarded record of `batch` came from, and which of them are
    /// second copies (see [`crate::kafka::forwarded`]).
    fn find_second_copies(&mut self, batch: &RecordBatch) {
        for record in batch.records() {
            let Some(from) = origin(record.headers.as_ref()) else {
                continue;
            };
            if !self.forwarded.first_time(record.partition, from) {
                self.second_copies
                    .insert((record.partition, record.offset as u64));
            }
        }
        if !self.second_copies.is_empty() {
            let count = self.second_copies.len();
            tracing::info!(
                count,
                "skipping records the rekey router forwarded a second time"
            );
            self.metrics.record_second_copies(count as u64);
        }
    }

    /// Every partition's next offset, as the group commit takes them.
    fn group_positions(&self) -> Vec<(Partition, u64)> {
        self.positions
            .iter()
            .map(|(partition, next)| ((self.events.clone(), *partition), *next))
            .collect()
    }

    /// Publishes the fleet-wide knowledge learned since the last call and merges the
    /// other instances' (see [`SharedFeeds`]).
    fn share<K: Sink<DecodedRecords>>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        self.feeds.shared.exchange(driver.engine(), &self.producer)
    }

    /// Record timestamp to now, per record; timestamps have millisecond resolution.
    fn record_latency(&mut self, batch: &RecordBatch) {
        self.last_record = Some(Instant::now());
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let latency = &mut self.latency;
        let latencies = batch.records().iter().filter_map(|record| {
            // A producer's clock is input: a timestamp set in the wrong unit must not
            // overflow; it is left out of the histogram.
            let created_us = record.timestamp_ms?.checked_mul(1000)?;
            let latency_us = now_us.saturating_sub(created_us).max(0) as u64;
            latency.saturating_record(latency_us);
            Some(Duration::from_micros(latency_us))
        });
        self.metrics.record_decision_latencies(latencies);
    }

    /// Where an assigned partition starts: its local position, or the changelog's when
    /// that is ahead (restoring from it first). What was forwarded into the partition is
    /// loaded as of that start (a restore stored the changelog's). The partition also
    /// takes up the watermark committed with its start (locally, resuming from its own
    /// position; in the changelog's position record, restored from there), so event
    /// times are judged as an uninterrupted run would have judged them instead of the
    /// first event after the restart or takeover setting the watermark, however far
    /// behind it is. A changelog written by an earlier build has no watermark: then the
    /// first events set it, as before.
    fn start<K>(&mut self, driver: &mut Driver<'_, K>, partition: i32) -> Result<Option<u64>> {
        let source = source_name(&self.events, partition);
        // Read before a restore from the changelog overwrites it.
        let local = driver.engine().offset(&source)?;
        let start = match &mut self.feeds.changelog {
            Some(changelog) => changelog.start(driver.engine(), &self.metrics, partition)?,
            None => Start::local(local),
        };
        let watermark = if start.offset.is_some() && start.offset == local {
            driver
                .engine()
                .offset(&source.watermark())?
                .and_then(|ms| i64::try_from(ms).ok())
        } else {
            start.watermark_ms
        };
        if watermark.is_some() {
            driver
                .lanes_mut()
                .insert(partition, Watermark::at(watermark));
        }
        let forwarded = driver.engine().forwarded(&source)?;
        self.forwarded.load(partition, forwarded);
        if let Some(next) = start.offset {
            // Where the store resumes is durable (in RocksDB, or in the changelog it was
            // restored from), and the group may be behind it: a member killed between
            // its state write and its group commit leaves that gap. With nothing left to
            // consume, no later commit would close it, and the group would show the
            // processed records as pending for good.
            self.positions.insert(partition, next);
            self.hand_to_group(vec![((self.events.clone(), partition), next)]);
        }
        Ok(start.offset)
    }

    /// Leaves `offsets` for the consumer thread's next group commit, together with any
    /// it has not taken yet (the later offset of a partition wins: a slower write's
    /// snapshot may predate a partition's start).
    fn hand_to_group(&self, offsets: Vec<(Partition, u64)>) {
        let Ok(mut slot) = self.channels.landed.lock() else {
            return;
        };
        let Some(pending) = slot.as_mut() else {
            *slot = Some(offsets);
            return;
        };
        for (partition, next) in offsets {
            match pending.iter_mut().find(|(held, _)| *held == partition) {
                Some((_, held)) => *held = (*held).max(next),
                None => pending.push((partition, next)),
            }
        }
    }

    fn log_progress<K: Sink<DecodedRecords>>(&mut self, driver: &Driver<'_, K>) {
        let consumed = self.consumed;
        let last = self.last_progress;
        let rate = (consumed - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
        let stats = driver.stats();
        tracing::info!(
            events_per_s = rate.round() as u64,
            consumed,
            lag = self.metrics.total_consumer_lag(),
            alerts = stats.alerts,
            commands = stats.commands,
            dead_letters = stats.invalid(),
            p99_ms = self.latency.value_at_quantile(0.99) as f64 / 1000.0,
            "progress"
        );
        self.last_progress = (Instant::now(), consumed);
    }
}

impl Source for KafkaSource {
    type Batch = DecodedRecords;

    fn pull<K: Sink<DecodedRecords>>(
        &mut self,
        driver: &mut Driver<'_, K>,
    ) -> Result<Pull<DecodedRecords>> {
        if self.last_progress.0.elapsed() >= self.progress_interval {
            self.log_progress(driver);
        }
        let wait = driver.until_commit().unwrap_or(self.progress_interval);
        let received = self.channels.jobs.recv_timeout(wait);
        // Registry, approval and fleet-wide changes apply between batches, never inside
        // one.
        self.feeds.registry.poll(driver.engine(), &self.metrics);
        self.feeds.approvals.poll(driver.engine(), &self.metrics);
        self.share(driver)?;
        match received {
            Ok(Job::Batch(batch)) => {
                self.first_record.get_or_insert_with(Instant::now);
                if self.rekeyed {
                    self.find_second_copies(batch.raw());
                }
                self.track(batch.raw());
                Ok(Pull::Batch(batch))
            }
            Ok(Job::Commit { revoked, reply }) => {
                let result = self.commit(driver, self.settle_budget, true);
                // The synchronous group commit that follows supersedes offsets a
                // checkpoint left for the consumer loop: committed after it (once the
                // partitions come back), they would move the group backwards.
                if let Ok(mut slot) = self.channels.landed.lock() {
                    *slot = None;
                }
                let revoked: Vec<i32> = revoked.iter().map(|(_, p)| *p).collect();
                for partition in &revoked {
                    self.positions.remove(partition);
                    driver.lanes_mut().remove(partition);
                }
                self.forwarded.release(&revoked);
                if let Some(changelog) = &mut self.feeds.changelog {
                    changelog.release(&revoked);
                }
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    return Err(Error::Stopped(
                        "a commit failed (its error was returned to the caller)".into(),
                    ));
                }
                Ok(Pull::Idle)
            }
            Ok(Job::Start { partition, reply }) => {
                let _ = reply.send(self.start(driver, partition));
                Ok(Pull::Idle)
            }
            Err(RecvTimeoutError::Timeout) => Ok(Pull::Idle),
            Err(RecvTimeoutError::Disconnected) => Ok(Pull::Stopped),
        }
    }

    fn recycle(&mut self, batch: DecodedRecords) {
        let mut batch = batch.into_raw();
        self.second_copies.clear();
        self.consumed += batch.len() as u64;
        self.record_latency(&batch);
        batch.clear();
        let _ = self.channels.recycle.try_send(batch);
    }

    fn is_second_copy(&self, at: At) -> bool {
        !self.second_copies.is_empty() && self.second_copies.contains(&(at.lane, at.offset))
    }

    fn admit(&mut self, event: &Event<'_>, at: At) -> bool {
        self.feeds
            .changelog
            .as_mut()
            .is_none_or(|changelog| changelog.admit(&event.agent_id, at.lane, at.offset as i64))
    }

    fn positions(&self, lanes: &Lanes, out: &mut Vec<(PositionKey, u64)>) {
        out.extend(
            self.positions
                .iter()
                .map(|(partition, next)| (source_name(&self.events, *partition), *next)),
        );
        // Each partition's watermark, committed with its position (see
        // `KafkaSource::start`).
        out.extend(self.positions.keys().filter_map(|partition| {
            let ms = lanes.get(partition).and_then(Watermark::get)?;
            let ms = u64::try_from(ms).ok()?;
            Some((source_name(&self.events, *partition).watermark(), ms))
        }));
        out.extend(self.forwarded.iter().map(|(partition, from, next)| {
            (
                source_name(&self.events, partition).forwarded_from(from),
                next,
            )
        }));
    }

    /// Each agent state goes to the changelog too, then every partition's position
    /// closes the commit there ([`KafkaSource::on_commit`]); the next commit's settle
    /// waits for them.
    fn on_state(&mut self, agent: &str, encoded: &[u8]) -> Result<()> {
        match &mut self.feeds.changelog {
            Some(changelog) => {
                changelog.write_state(&self.producer, &self.positions, agent, encoded)
            }
            None => Ok(()),
        }
    }

    /// With a changelog, partitions may be handed over next: their new owner must find
    /// this commit there, so a waiting commit settles these records too.
    fn on_commit(&mut self, lanes: &Lanes) -> Result<bool> {
        match &mut self.feeds.changelog {
            Some(changelog) => {
                changelog.write_positions(
                    &self.producer,
                    &self.positions,
                    &self.forwarded,
                    lanes,
                )?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn checkpoint<K: Sink<DecodedRecords>>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        match self.commit(driver, SETTLE_SLICE.min(self.settle_budget), false) {
            Ok(offsets) if !offsets.is_empty() => {
                self.hand_to_group(offsets);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(Error::Undelivered {
                count, last_error, ..
            }) => {
                tracing::warn!(count, %last_error, "outputs still undelivered; state and offsets held back");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The consumer thread asked for the final commit before it hung up; only the write
    /// in flight is left to land.
    fn close<K: Sink<DecodedRecords>>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        driver.engine().wait_for_commit().map(drop)
    }
}
