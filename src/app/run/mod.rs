//! `agentwatch run`: the Kafka service.
//!
//! Two threads of ours, plus librdkafka's network threads and one RocksDB writer:
//!
//! ```text
//!  consumer thread: poll ─► merge partitions by event time ─► RecordBatch ─► decode ─┐
//!                                                    (bounded channel, back-pressure) ▼
//!  engine thread:   crate::drive: bound time ─► engine ─► produce outputs ─► every
//!                   flush_interval: wait for acks ─► encode states + offsets ─► state
//!                   writer thread
//! ```
//!
//! The engine thread runs the same driver as `replay` and `demo` ([`crate::drive`]),
//! with a Kafka source (`worker`: the batches and rebalance requests the consumer
//! thread sends, the consumed positions, the changelog) and a Kafka sink (`sink`:
//! alerts, commands, dead letters).
//!
//! The consumer thread owns the consumer and its rebalance callbacks; the engine thread
//! ([`worker`]) owns the engine, the producer and the consumed positions, so an agent's
//! state has exactly one writer. A revocation sends a commit job down the same channel as
//! the batches, so it waits for precisely the records consumed before it, delivers their
//! outputs, writes their state and offsets, and only then gives the partitions up.
//! An assigned partition starts at the offset RocksDB holds, after its state is restored
//! from the changelog topic if RocksDB lacks it or is behind ([`changelog`]); records
//! polled before a rebalance from a partition it moved are dropped, and group offsets are
//! committed only for partitions still owned. The consumer thread hands records on
//! merged by event time across the partitions it owns ([`crate::kafka::merge`]), so
//! what is judged across agents (the fleet context, first uses of systems and
//! credentials) sees a backlog in the order it happened, not in librdkafka's fetch
//! order. No async runtime is involved:
//! every stage is CPU-bound or blocking, and whole batches (not records) cross threads.

mod approvals;
mod changelog;
mod deadline;
mod registry;
mod rekey;
mod report;
mod shared;
mod sink;
mod watched_file;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use changelog::Changelog;
pub use report::{LatencySummary, RunReport};
use worker::{Channels, Feeds, Job, Landed, Worker, WorkerOptions};

use crate::app::setup::{self, EngineSetup, WithoutKey};
use crate::config::{ServiceConfig, Topics};
use crate::error::{Error, Result};
use crate::kafka::batch::{DecodedRecords, HeldRecord, RecordBatch};
use crate::kafka::changelog::ensure_changelog;
use crate::kafka::consumer::{
    callbacks, commit_to_group, leave, poll, subscribe, EventConsumer, GroupCommit, Partition,
    PartitionOwner, Polled, Role,
};
use crate::kafka::merge::Merge;
use crate::kafka::producer::OutputProducer;
use crate::kafka::rekey::ensure_repartition;
use crate::kafka::topics::ensure_topics;
use crate::model::{event_time, Limits};
use crate::state::StateStore;
use crate::telemetry::{Metrics, MetricsServer};

/// Most records handed to the engine at once.
pub const BATCH: usize = 2048;
/// Batches queued between the threads: enough to keep the engine busy while the consumer
/// polls, few enough that a revocation waits only briefly.
const QUEUED_BATCHES: usize = 2;
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Options of one run beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop (gracefully) once this many records have been consumed; for load tests and
    /// one-shot backfills.
    pub max_events: Option<u64>,
}

/// The consumer's view of the engine thread, used from the rebalance callbacks.
struct Owner {
    events: String,
    jobs: SyncSender<Job>,
    ready: Arc<AtomicBool>,
    /// The events topic's partitions this member owns now (written by rebalances,
    /// which run inside `poll` on the consumer thread).
    owned: Mutex<Vec<i32>>,
}

impl Owner {
    /// Asks the engine thread to commit everything consumed so far and waits for it.
    fn commit_all(&self, revoked: Vec<Partition>) -> Result<Vec<(Partition, u64)>> {
        let (reply, answer) = sync_channel(1);
        self.jobs
            .send(Job::Commit { revoked, reply })
            .map_err(|_| engine_stopped())?;
        answer.recv().map_err(|_| engine_stopped())?
    }
}

fn engine_stopped() -> Error {
    Error::Stopped("the engine thread stopped".into())
}

impl PartitionOwner for Owner {
    fn start_offset(&self, topic: &str, partition: i32) -> Result<Option<u64>> {
        if topic != self.events {
            return Ok(None);
        }
        let (reply, answer) = sync_channel(1);
        self.jobs
            .send(Job::Start { partition, reply })
            .map_err(|_| engine_stopped())?;
        answer.recv().map_err(|_| engine_stopped())?
    }

    fn release(&self, partitions: &[Partition]) -> Vec<(Partition, u64)> {
        match self.commit_all(partitions.to_vec()) {
            Ok(offsets) => offsets
                .into_iter()
                .filter(|(partition, _)| partitions.contains(partition))
                .collect(),
            Err(error) => {
                tracing::error!(%error, code = error.code(), "could not commit revoked partitions");
                Vec::new()
            }
        }
    }

    fn assigned(&self, partitions: &[Partition]) {
        self.ready.store(!partitions.is_empty(), Ordering::Relaxed);
        if let Ok(mut owned) = self.owned.lock() {
            *owned = partitions
                .iter()
                .filter(|(topic, _)| *topic == self.events)
                .map(|(_, partition)| *partition)
                .collect();
        }
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
    let mut setup = EngineSetup::new(setup::detectors(config.detectors_dir.as_deref())?);
    let metrics = Arc::new(Metrics::new());
    let server = MetricsServer::start(&config.metrics_listen.to_string(), Arc::clone(&metrics))?;
    ensure_topics(
        &config.kafka,
        &[
            &config.kafka.topics.events,
            &config.kafka.topics.alerts,
            &config.kafka.topics.commands,
            &config.kafka.topics.dlq,
        ],
    )?;
    // With re-keying, the engine's events are the repartition topic's.
    let rekeyed = config.kafka.rekey.then(|| Topics {
        events: config.kafka.topics.repartition.clone(),
        ..config.kafka.topics.clone()
    });
    if rekeyed.is_some() {
        ensure_repartition(
            &config.kafka,
            &config.kafka.topics.events,
            &config.kafka.topics.repartition,
        )?;
    }
    let topics = rekeyed.as_ref().unwrap_or(&config.kafka.topics);
    if config.changelog {
        ensure_changelog(&config.kafka, &topics.events, &topics.changelog)?;
    }
    let registry_stop = Arc::new(AtomicBool::new(false));
    let opened = registry::open_registry(config, Arc::clone(&metrics), Arc::clone(&registry_stop))?;
    let approvals =
        approvals::open_approvals(config, Arc::clone(&metrics), Arc::clone(&registry_stop))?;
    setup.options.cache_capacity = config.cache_capacity;
    setup.metrics = Some(Arc::clone(&metrics));
    setup.approvals = approvals.store;
    if let Some(registry) = opened.registry {
        tracing::info!(
            agents = registry.len(),
            enforce = registry.enforces(),
            "registry in force: policy detectors and owners on"
        );
        metrics.set_registry_agents(registry.len());
        setup.registry = Some(registry);
    }
    setup.signer = setup::signer(config.signing_key_file.as_deref(), WithoutKey::WarnUnsigned)?;
    let engine = setup.build(StateStore::open(&config.state_dir)?)?;
    let opened_shared = shared::open_shared(config, &metrics, &registry_stop)?;
    let producer = OutputProducer::new(&config.kafka, Some(Arc::clone(&metrics)))?;
    // One value for both threads: the consumer decodes under it, and the engine thread
    // takes those events only if its own limits are the same (else it decodes again).
    let limits = Limits {
        max_message_bytes: config.max_event_bytes,
    };
    let (jobs, incoming) = sync_channel::<Job>(QUEUED_BATCHES);
    let (recycle, recycled) = sync_channel::<RecordBatch>(QUEUED_BATCHES + 1);
    let landed: Landed = Arc::new(Mutex::new(None));
    let worker = Worker::new(
        engine,
        producer,
        Arc::clone(&metrics),
        WorkerOptions {
            topics: topics.clone(),
            limits,
            flush_interval: config.flush_interval,
            settle_budget: config.shutdown_timeout,
            progress_interval: config.progress_interval,
            time: config.time,
            rekeyed: config.kafka.rekey,
        },
        Feeds {
            registry: opened.feed,
            approvals: approvals.feed,
            changelog: config.changelog.then(|| {
                Changelog::new(
                    config.kafka.clone(),
                    topics.events.clone(),
                    topics.changelog.clone(),
                )
            }),
            shared: opened_shared.feeds,
        },
        Channels {
            jobs: incoming,
            recycle,
            landed: Arc::clone(&landed),
        },
    )?;
    let router = rekey::start(config, &metrics)?;
    let engine_thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || worker.serve())
        .map_err(|e| Error::io("starting the engine thread", e))?;
    let owner = Arc::new(Owner {
        events: topics.events.clone(),
        jobs: jobs.clone(),
        ready: server.readiness(),
        owned: Mutex::new(Vec::new()),
    });
    let consumer = subscribe(
        &config.kafka,
        &topics.events,
        Arc::clone(&owner),
        Arc::clone(&metrics),
        Role::Consumer,
    )?;
    tracing::info!(brokers = %config.kafka.brokers, group = %config.kafka.group_id, topic = %topics.events, state = %config.state_dir.display(), "service started");

    let consumed = consume(
        &consumer,
        Feed {
            jobs: &jobs,
            recycled: &recycled,
            landed: &landed,
            limits: &limits,
            router: router.as_ref(),
        },
        shutdown,
        options,
    );
    let committed = consumed.and_then(|()| {
        tracing::info!("stopping: committing the work in flight");
        owner.commit_all(Vec::new())
    });
    // Everything durable is done; what follows only tells the broker, and is bounded.
    let _deadline = committed
        .is_ok()
        .then(|| deadline::arm(deadline::LEAVE_GRACE));
    let outcome = committed.map(|offsets| {
        if let Err(error) = commit_to_group(&consumer, &offsets, GroupCommit::Sync) {
            tracing::warn!(%error, "committing offsets to the group failed (state store has them)");
        }
    });
    server.set_ready(false);
    leave(&consumer);
    drop(consumer);
    drop(owner);
    drop(jobs);
    // The engine thread's own error explains a failure best; a failed final commit
    // (returned in `outcome`) comes next.
    let joined = join(engine_thread);
    registry_stop.store(true, Ordering::Relaxed);
    let routed = router.map(rekey::RouterThread::stop);
    let readers = [opened.reader, approvals.reader].into_iter().flatten();
    for reader in readers.chain(opened_shared.readers) {
        let _ = reader.join();
    }
    let report = match (joined, outcome) {
        // A router that failed stopped the service: its own error says why.
        (_, Err(Error::Stopped(reason))) if reason == ROUTER_STOPPED => {
            return match routed {
                Some(Err(error)) => Err(error),
                _ => Err(Error::Stopped(reason)),
            };
        }
        (Err(Error::Stopped(_)), Err(error)) => return Err(error),
        (joined, outcome) => {
            let report = joined?;
            outcome?;
            report
        }
    };
    if let Some(routed) = routed {
        routed?;
    }
    tracing::info!(
        consumed = report.consumed,
        dead_letters = report.dead_letters,
        alerts = report.alerts,
        commands = report.commands,
        "stopped"
    );
    Ok(report)
}

/// What the consumer thread hands batches through.
struct Feed<'a> {
    jobs: &'a SyncSender<Job>,
    recycled: &'a Receiver<RecordBatch>,
    landed: &'a Landed,
    limits: &'a Limits,
    /// The router feeding the repartition topic, when re-keying.
    router: Option<&'a rekey::RouterThread>,
}

/// Why the consumer loop stopped when the router did (its own error is reported).
const ROUTER_STOPPED: &str = "the rekey router stopped";

/// The consumer thread's loop: poll, merge by event time, batch, hand over; commit
/// landed offsets to the group.
fn consume(
    consumer: &EventConsumer<Owner>,
    feed: Feed<'_>,
    shutdown: &AtomicBool,
    options: &RunOptions,
) -> Result<()> {
    let mut consumed = 0u64;
    let mut merge: Merge<HeldRecord> = Merge::default();
    let mut batch = RecordBatch::with_capacity(BATCH);
    let mut generation = callbacks(consumer).rebalances();
    // Whether the merge may hold more records ready to go: then polling must not wait.
    let mut ready = false;
    while !shutdown.load(Ordering::Relaxed) {
        if feed.router.is_some_and(rekey::RouterThread::has_stopped) {
            return Err(Error::Stopped(ROUTER_STOPPED.into()));
        }
        let mut wait = if ready { Duration::ZERO } else { POLL_WAIT };
        // When this round's records were polled (to the merge's wait, a round is close
        // enough: it ends within one poll wait).
        let polled_at = Instant::now();
        for _ in 0..BATCH {
            let polled = poll(consumer, wait);
            // A rebalance runs inside `poll`, which then returns nothing or a record
            // fetched under the new assignment. Records held before it from a partition
            // it revoked are not ours any more, and a partition it assigned starts again
            // from its committed offset: either way they are dropped here (and consumed
            // again by whoever owns them now). Other partitions' records stay, since
            // their positions did not move. (The batch is empty while polling: it is
            // filled from the merge and handed over below.)
            let now = callbacks(consumer).rebalances();
            if now != generation {
                let moved = callbacks(consumer).take_moved();
                merge.forget(&moved);
                generation = now;
                if let Some(error) = callbacks(consumer).take_failure() {
                    return Err(error);
                }
            }
            let Some(result) = polled else {
                break;
            };
            wait = Duration::ZERO;
            match result {
                Polled::Record { partition, record } => {
                    // Only the time is read here (the batch decodes the record in
                    // full, borrowing the copy it makes). A record without a valid time
                    // takes its partition's latest; one with a valid time and a fault
                    // elsewhere takes its own. Either way it stays in its partition's
                    // order, and the engine sets it aside with the decoder's code.
                    let time_ms = event_time(record.payload(), feed.limits)
                        .or_else(|| merge.latest(partition))
                        .unwrap_or(i64::MIN);
                    let bytes = record.payload().len();
                    merge.push(partition, time_ms, bytes, record, polled_at);
                }
                Polled::End(partition) => merge.reached_end(partition),
                Polled::Failed(error) => tracing::warn!(%error, "consumer error"),
            }
        }
        {
            let owned = callbacks(consumer)
                .owner()
                .owned
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            ready = false;
            while batch.len() < BATCH {
                let Some((partition, held)) = merge.next(&owned, now) else {
                    break;
                };
                batch.push_held(partition, held);
                ready = batch.len() == BATCH;
            }
        }
        if !batch.is_empty() {
            consumed += batch.len() as u64;
            let next = feed
                .recycled
                .try_recv()
                .unwrap_or_else(|_| RecordBatch::with_capacity(BATCH));
            let full = std::mem::replace(&mut batch, next);
            feed.jobs
                .send(Job::Batch(DecodedRecords::decode_all(full, *feed.limits)))
                .map_err(|_| engine_stopped())?;
        }
        let durable = feed.landed.lock().ok().and_then(|mut slot| slot.take());
        if let Some(offsets) = durable {
            if let Err(error) = commit_to_group(consumer, &offsets, GroupCommit::Async) {
                tracing::debug!(%error, "group offset commit failed; the next one supersedes it");
            }
        }
        if options.max_events.is_some_and(|max| consumed >= max) {
            break;
        }
    }
    Ok(())
}

fn join(thread: JoinHandle<Result<RunReport>>) -> Result<RunReport> {
    thread
        .join()
        .map_err(|_| Error::Stopped("the engine thread panicked".into()))?
}
