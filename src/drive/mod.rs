//! The one driver: every way of running the engine (`replay`, `demo`, the Kafka service)
//! is a [`Source`] of raw records and a [`Sink`] for what the engine says, joined by the
//! same loop, [`drive`]:
//!
//! ```text
//!  Source::pull ─► decode* + bound time (count invalid, Sink::reject) ─► Engine
//!        ▲                                                                │
//!        │            Sink::settle ─► Engine::commit(Source::positions) ◄─┴─ Sink::publish
//!        └──────────── (positions are stored only after the sink settled what came before)
//! ```
//!
//! (*) Sources decode ahead on a thread of their own where they can ([`Records::decode`]):
//! the file source reads and decodes on a thread of its own ([`ahead`]), the Kafka source
//! decodes on its consumer thread. Decoding is about a quarter of the work per event and
//! needs nothing from the engine, so the engine's thread only judges.
//!
//! A source owns its framing and its positions (a file's line number, a partition's
//! offset) and says how to resume; a sink owns its encoding and what "settled" means
//! (writers flushed, Kafka acknowledged). The [`Driver`] owns the rest, once: decoding
//! (or taking what the source decoded), the per-lane watermarks that bound event time,
//! counting invalid records, feeding the engine, and committing state with positions.
//! Dispatch to sources and sinks is static (a source's `admit` is asked per event, a
//! sink's `reject` per invalid record, the rest per batch); nothing here allocates or
//! copies per event: an event decoded ahead is lent to the engine where it lies
//! (copying each one out cost the engine's thread about 200 instructions per event).
//!
//! A new input (a changelog, OTLP) is a new `Source`; a new output (OCSF) is a new
//! `Sink` or a new encoding inside one; neither needs a new loop.
//! Sources: [`lines::LineSource`] (files, stdin, simulations), `app::run`'s Kafka source.
//! Sinks: [`jsonl::JsonlSink`] (files, stdout), [`Collect`] (memory), `app::run`'s
//! Kafka sink.

pub mod ahead;
pub mod decoded;
pub mod jsonl;
pub mod lines;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::detect::DetectorSet;
use crate::error::Result;
use crate::model::{decode_event, DecodeError, Event, Limits, TimeBounds, Watermark};
use crate::pipeline::{Engine, Outputs};
use crate::state::PositionKey;
use crate::telemetry::Metrics;

/// Where a record sits in its source: a lane (a Kafka partition; 0 for a file) and its
/// offset in that lane (the Kafka offset; the 1-based line number of a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// The lane: each lane has its own watermark and its own stored position.
    pub lane: i32,
    /// The record's offset in its lane.
    pub offset: u64,
}

/// A batch of raw records as a source read them.
pub trait Records {
    /// Number of records.
    fn len(&self) -> usize;
    /// True when there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Where record `index` came from.
    fn at(&self, index: usize) -> At;
    /// Record `index`'s bytes (one encoded event).
    fn payload(&self, index: usize) -> &[u8];
    /// Record `index`'s key, if the source has keys: it must be the event's `agent_id`.
    fn key(&self, _index: usize) -> Option<&[u8]> {
        None
    }
    /// Record `index` decoded under `limits`. By default it is decoded here, on the
    /// engine's thread (an owned event); a batch decoded ahead on another thread (see
    /// [`ahead`]) lends the event it holds instead, so decoding overlaps the engine's
    /// work on the batch before and the engine's thread copies nothing.
    fn decode(&self, index: usize, limits: &Limits) -> Result<Cow<'_, Event<'_>>, DecodeError> {
        decode_event(self.payload(index), limits).map(Cow::Owned)
    }
}

/// What a source has next.
#[derive(Debug)]
pub enum Pull<B> {
    /// Records to process.
    Batch(B),
    /// Nothing yet (the source did other work, or waited): commit if due, pull again.
    Idle,
    /// The input has ended: nothing more can arrive, so events still waiting for an
    /// approval are decided now.
    Ended,
    /// Stop here; the rest is left for a later run (nothing is decided early).
    Stopped,
}

/// A source of raw records with positions.
pub trait Source: Sized {
    /// The batches it yields.
    type Batch: Records;

    /// Prepares the source once, before the first pull: typically resumes after the
    /// position the engine's store holds, and sets its lanes' watermarks.
    fn open<K>(&mut self, _driver: &mut Driver<'_, K>) -> Result<()> {
        Ok(())
    }

    /// The next batch. A source may use `driver` for work that belongs between batches
    /// (commits requested from elsewhere, updates applied to the engine).
    fn pull<K: Sink<Self::Batch>>(
        &mut self,
        driver: &mut Driver<'_, K>,
    ) -> Result<Pull<Self::Batch>>;

    /// Takes a processed batch back, to reuse its buffers.
    fn recycle(&mut self, _batch: Self::Batch) {}

    /// Whether the record at `at` is a copy of one processed before (a rekey router's
    /// second copy, see `kafka::forwarded`): skipped before it is decoded, so that a
    /// copy of a rejected record is not rejected again. Counted as skipped.
    fn is_second_copy(&self, _at: At) -> bool {
        false
    }

    /// Whether a decoded event is new to the engine (false: its effect is already in
    /// the state, e.g. restored from a changelog; it is skipped).
    fn admit(&mut self, _event: &Event<'_>, _at: At) -> bool {
        true
    }

    /// The positions to store with the state: just past every record pulled so far.
    /// `lanes` holds each lane's watermark, for sources that store it too.
    fn positions(&self, lanes: &Lanes, out: &mut Vec<(PositionKey, u64)>);

    /// Sees each agent state a commit encodes (for a source that mirrors them, like the
    /// Kafka changelog).
    fn on_state(&mut self, _agent: &str, _encoded: &[u8]) -> Result<()> {
        Ok(())
    }

    /// Called once a commit's state was handed to the store, with the lanes' watermarks
    /// as committed. Returns true if it published records the sink must settle before
    /// positions may change hands.
    fn on_commit(&mut self, _lanes: &Lanes) -> Result<bool> {
        Ok(false)
    }

    /// A commit the driver's policy asks for (see [`Commit`]).
    fn checkpoint<K: Sink<Self::Batch>>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        driver.commit(self, Duration::MAX, false).map(drop)
    }

    /// The end of a run: by default, a last commit.
    fn close<K: Sink<Self::Batch>>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        driver.commit(self, Duration::MAX, true).map(drop)
    }
}

/// One batch's outputs, as a sink sees them.
pub struct Published<'a, 'e> {
    /// Alerts, commands and (if recorded) scores.
    pub outputs: &'a Outputs,
    /// The batch's accepted events (score rows index into them).
    pub events: &'a [Cow<'a, Event<'e>>],
    /// The running detectors (score rows index into them).
    pub detectors: &'a DetectorSet,
    /// The run so far.
    pub stats: &'a DriveStats,
    /// True for the outputs of the end of input (events that waited for an approval,
    /// decided at the end): no events, no scores.
    pub end_of_input: bool,
}

/// Where outputs go.
pub trait Sink<R: ?Sized> {
    /// Publishes one batch's outputs.
    fn publish(&mut self, batch: &Published<'_, '_>) -> Result<()>;

    /// A record that is not a valid event, or whose time is out of range (it has been
    /// counted already): a dead letter, where the sink keeps them.
    fn reject(&mut self, _records: &R, _index: usize, _error: &DecodeError) -> Result<()> {
        Ok(())
    }

    /// Waits, for at most `budget`, until everything published so far is durable
    /// (written out, acknowledged). Positions are committed only after this succeeded.
    fn settle(&mut self, budget: Duration) -> Result<()>;
}

/// A sink that keeps the last batch's alerts and commands in memory.
#[derive(Debug, Default)]
pub struct Collect {
    /// The last published batch's outputs (scores are not kept).
    pub outputs: Outputs,
}

impl<R: ?Sized> Sink<R> for Collect {
    fn publish(&mut self, batch: &Published<'_, '_>) -> Result<()> {
        self.outputs.clear();
        self.outputs.alerts.extend_from_slice(&batch.outputs.alerts);
        self.outputs
            .commands
            .extend_from_slice(&batch.outputs.commands);
        Ok(())
    }

    fn settle(&mut self, _budget: Duration) -> Result<()> {
        Ok(())
    }
}

/// Which clock bounds event time and counts command expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Event time only: each event's processing time is its lane's watermark after it
    /// (replays, which are then deterministic whatever the batch boundaries).
    Watermark,
    /// The wall clock, read once per batch (the live service).
    Wall,
}

/// When the driver commits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// After this many events, writing on this thread.
    EveryEvents(u64),
    /// Every interval of wall time, the write done by a background thread while the
    /// next batches are processed.
    Background(Duration),
}

/// How the driver decodes and commits.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Decoder limits.
    pub limits: Limits,
    /// How far event time may stray (see [`Watermark`]).
    pub time: TimeBounds,
    /// Processing time.
    pub clock: Clock,
    /// Commit policy.
    pub commit: Commit,
    /// Where invalid records are counted, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
}

/// One rejected record, kept for a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where it was.
    pub at: At,
    /// Decode error code.
    pub code: &'static str,
    /// The decoder's message.
    pub message: String,
}

/// How many invalid records keep their details in [`DriveStats::invalid_samples`].
pub const INVALID_SAMPLES: usize = 20;

/// What a drive did so far.
#[derive(Debug, Clone, Default)]
pub struct DriveStats {
    /// Records processed (valid or not).
    pub records: u64,
    /// Events handed to the engine.
    pub events: u64,
    /// Records skipped because the state already held them (a restored state's
    /// events, a rekey router's second copies).
    pub skipped: u64,
    /// Alerts published.
    pub alerts: u64,
    /// Commands published.
    pub commands: u64,
    /// Invalid records by code.
    pub invalid_by_code: BTreeMap<&'static str, u64>,
    /// The first invalid records.
    pub invalid_samples: Vec<Invalid>,
}

impl DriveStats {
    /// Invalid records.
    pub fn invalid(&self) -> u64 {
        self.invalid_by_code.values().sum()
    }
}

/// Each lane's watermark: the latest event time it accepted.
pub type Lanes = BTreeMap<i32, Watermark>;

/// The engine, a sink, and the state of one drive: the steps of [`drive`], also
/// callable one by one by a source that is fed from elsewhere (the Kafka service).
pub struct Driver<'e, K> {
    engine: &'e mut Engine,
    sink: K,
    options: DriveOptions,
    lanes: Lanes,
    outputs: Outputs,
    stats: DriveStats,
    positions: Vec<(PositionKey, u64)>,
    dirty: bool,
    since_commit: u64,
    last_commit: Instant,
}

impl<'e, K> Driver<'e, K> {
    /// A driver of `engine` publishing to `sink`.
    pub fn new(engine: &'e mut Engine, sink: K, options: DriveOptions) -> Self {
        Driver {
            engine,
            sink,
            options,
            lanes: Lanes::new(),
            outputs: Outputs::default(),
            stats: DriveStats::default(),
            positions: Vec::new(),
            dirty: false,
            since_commit: 0,
            last_commit: Instant::now(),
        }
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// Waits (for at most `budget`) until everything the sink was handed is
    /// acknowledged: outputs, and what a source sent through it while committing (a
    /// changelog's states and positions).
    pub fn settle<R: ?Sized>(&mut self, budget: Duration) -> Result<()>
    where
        K: Sink<R>,
    {
        self.sink.settle(budget)
    }

    /// The limits records are decoded under.
    pub fn limits(&self) -> &Limits {
        &self.options.limits
    }

    /// The sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The sink, to change.
    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    /// Ends the drive, giving the sink back.
    pub fn into_sink(self) -> K {
        self.sink
    }

    /// The run so far.
    pub fn stats(&self) -> &DriveStats {
        &self.stats
    }

    /// Each lane's watermark, for a source to set on resume or to forget a lane given up.
    pub fn lanes_mut(&mut self) -> &mut Lanes {
        &mut self.lanes
    }

    /// Whether the commit policy asks for a commit now.
    pub fn commit_due(&self) -> bool {
        self.engine.needs_commit()
            || match self.options.commit {
                Commit::EveryEvents(every) => self.since_commit >= every,
                Commit::Background(interval) => self.last_commit.elapsed() >= interval,
            }
    }

    /// How long until a timed commit is due (`None`: commits are not timed).
    pub fn until_commit(&self) -> Option<Duration> {
        match self.options.commit {
            Commit::EveryEvents(_) => None,
            Commit::Background(interval) => {
                Some(interval.saturating_sub(self.last_commit.elapsed()))
            }
        }
    }

    /// Decodes a batch (or takes what its source decoded), bounds its times, counts and
    /// rejects what is invalid, runs the engine on the rest and publishes what it
    /// produced.
    pub fn step<S: Source>(&mut self, source: &mut S, batch: &S::Batch) -> Result<()>
    where
        K: Sink<S::Batch>,
    {
        let now_ms = match self.options.clock {
            Clock::Wall => Some(wall_clock_ms()),
            Clock::Watermark => None,
        };
        let count = batch.len();
        let mut events: Vec<Cow<'_, Event<'_>>> = Vec::with_capacity(count);
        // Under the watermark clock, the watermark after each accepted event: its
        // processing time.
        let mut processing: Vec<i64> = Vec::new();
        if now_ms.is_none() {
            processing.reserve(count);
        }
        for index in 0..count {
            let at = batch.at(index);
            if source.is_second_copy(at) {
                self.stats.skipped += 1;
                continue;
            }
            let watermark = self.lanes.entry(at.lane).or_default();
            let key = batch.key(index);
            let admitted = batch.decode(index, &self.options.limits).and_then(|event| {
                if key.is_some_and(|key| key != event.agent_id.as_bytes()) {
                    return Err(DecodeError::KeyMismatch);
                }
                let after = watermark.admit(event.time_ms, &self.options.time, now_ms)?;
                Ok((event, after))
            });
            match admitted {
                Ok((event, after)) => {
                    if source.admit(&event, at) {
                        events.push(event);
                        if now_ms.is_none() {
                            processing.push(after);
                        }
                    } else {
                        self.stats.skipped += 1;
                    }
                }
                Err(error) => {
                    self.count_invalid(at, &error);
                    self.sink.reject(batch, index, &error)?;
                }
            }
        }
        self.outputs.clear();
        match now_ms {
            Some(now_ms) => {
                self.engine.set_processing_ms(Some(now_ms));
                self.engine.process_batch(&events, &mut self.outputs)?;
            }
            None => process_in_order(self.engine, &events, &processing, &mut self.outputs)?,
        }
        self.stats.records += count as u64;
        self.stats.events += events.len() as u64;
        self.stats.alerts += self.outputs.alerts.len() as u64;
        self.stats.commands += self.outputs.commands.len() as u64;
        self.since_commit += events.len() as u64;
        self.dirty = true;
        self.sink.publish(&Published {
            outputs: &self.outputs,
            events: &events,
            detectors: self.engine.detectors(),
            stats: &self.stats,
            end_of_input: false,
        })
    }

    /// The input has ended: decides the events still waiting for an approval (see
    /// `crate::approvals`) and publishes what that produced.
    pub fn end_input<R: ?Sized>(&mut self) -> Result<()>
    where
        K: Sink<R>,
    {
        self.outputs.clear();
        self.engine.release_all(&mut self.outputs)?;
        self.stats.alerts += self.outputs.alerts.len() as u64;
        self.stats.commands += self.outputs.commands.len() as u64;
        self.dirty = true;
        self.sink.publish(&Published {
            outputs: &self.outputs,
            events: &[],
            detectors: self.engine.detectors(),
            stats: &self.stats,
            end_of_input: true,
        })
    }

    /// Settles the sink (for at most `budget`), then stores the changed agent states
    /// with `source`'s positions in one write: inline under [`Commit::EveryEvents`]
    /// (always, so the positions are stored even when nothing changed), handed to the
    /// background writer under [`Commit::Background`] (only when something changed;
    /// with `wait`, records the source published while committing are settled too).
    /// Returns true if a write was made or handed over.
    pub fn commit<S: Source>(
        &mut self,
        source: &mut S,
        budget: Duration,
        wait: bool,
    ) -> Result<bool>
    where
        K: Sink<S::Batch>,
    {
        let background = matches!(self.options.commit, Commit::Background(_));
        if background && !self.dirty {
            // Nothing to write; but a caller that waits (a revocation, the shutdown) needs
            // what earlier commits sent after their own settle (a changelog's states and
            // positions) acknowledged before it goes on.
            if wait {
                self.sink.settle(budget)?;
            }
            return Ok(false);
        }
        self.sink.settle(budget)?;
        self.positions.clear();
        source.positions(&self.lanes, &mut self.positions);
        if background {
            self.engine
                .commit_in_background(&self.positions, &mut |agent, encoded| {
                    source.on_state(agent, encoded)
                })?;
            if source.on_commit(&self.lanes)? && wait {
                self.sink.settle(budget)?;
            }
        } else {
            self.engine.commit(&self.positions)?;
        }
        self.dirty = false;
        self.since_commit = 0;
        Ok(true)
    }

    /// Restarts the commit timer (after a timed commit, whatever its outcome).
    pub fn checkpointed(&mut self) {
        self.last_commit = Instant::now();
    }

    fn count_invalid(&mut self, at: At, error: &DecodeError) {
        if let Some(metrics) = &self.options.metrics {
            metrics.record_invalid(error);
        }
        *self.stats.invalid_by_code.entry(error.code()).or_default() += 1;
        if self.stats.invalid_samples.len() < INVALID_SAMPLES {
            self.stats.invalid_samples.push(Invalid {
                at,
                code: error.code(),
                message: error.to_string(),
            });
        }
    }
}

/// Runs `source` through `driver` until the source ends or stops: pull, step, commit
/// when the policy says so, and close (by default, a last commit).
pub fn drive<S: Source, K: Sink<S::Batch>>(
    source: &mut S,
    driver: &mut Driver<'_, K>,
) -> Result<()> {
    source.open(driver)?;
    loop {
        match source.pull(driver)? {
            Pull::Batch(batch) => {
                let stepped = driver.step(source, &batch);
                source.recycle(batch);
                stepped?;
            }
            Pull::Idle => {}
            Pull::Ended => {
                driver.end_input::<S::Batch>()?;
                break;
            }
            Pull::Stopped => break,
        }
        if driver.commit_due() {
            source.checkpoint(driver)?;
            driver.checkpointed();
        }
    }
    source.close(driver)?;
    if driver.options.clock == Clock::Watermark {
        driver.engine.set_processing_ms(None);
    }
    Ok(())
}

/// Processes `events` so that each one's processing time is the watermark after it
/// (`processing`), however the input was cut into batches. The engine takes one
/// processing time per call and counts expiry from the later of it and event time, so
/// a run of events shares a call as long as one value serves them all: events that
/// advance the watermark are served by any earlier watermark, and a late event needs
/// exactly the watermark in force. In-order input is one call per batch.
fn process_in_order(
    engine: &mut Engine,
    events: &[Cow<'_, Event<'_>>],
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

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before it).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
