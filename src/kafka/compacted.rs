//! Following a compacted topic of records keyed by id (the agent registry, approvals):
//! read it from the beginning up to the end found at start, hand that over as the
//! initial state, then keep reading on a thread of its own and send each later change
//! to the engine thread over a channel.
//!
//! No consumer group shares the partitions out: each instance needs every record, not a
//! share of them. The caller's `decode` turns a record into a change, or into `None`
//! for a record it refused (and logged and counted itself): one bad record must not
//! stop the changes for everything else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{client_config, Role};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::telemetry::{Metrics, RecordSource};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the service waits at start for a topic to load.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a record was read, for the logs of a refused one (never its content).
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    /// The topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// What [`follow`] hands the service.
pub struct Follower<T> {
    /// The changes up to the end of the topic at start, in topic order.
    pub initial: Vec<T>,
    /// Later changes, as they arrive.
    pub updates: Receiver<T>,
    /// The reading thread; it stops when `stop` is set or `updates` is dropped.
    pub thread: JoinHandle<()>,
}

/// A record decoder: key and value (`None` for a tombstone) to a change, or `None`
/// for a refused record.
pub type Decode<T> = Box<dyn Fn(RecordAt<'_>, Option<&[u8]>, Option<&[u8]>) -> Option<T> + Send>;

/// Why a record was refused: a stable code (the `code` label of
/// `agentwatch_records_rejected_total`) and a message that never repeats the record's
/// content (it may be forged, and approvals name people).
pub trait Refusal: std::fmt::Display {
    /// The stable code.
    fn code(&self) -> &'static str;
}

/// What [`follow_refusing`] reads: which records, how they are logged and counted.
pub struct RecordTopic<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The reader's name (thread name, group id suffix), e.g. `registry`.
    pub name: &'a str,
    /// The record, as refusals name it: `"{record} record refused"`.
    pub record: &'static str,
    /// The `source` label refusals are counted under.
    pub source: RecordSource,
}

/// Like [`follow`], with a `decode` that says why it refuses a record: every refusal
/// is logged by position and code (never by content) and counted in `metrics`, the one
/// way all record topics report them.
pub fn follow_refusing<T, E, F>(
    kafka: &KafkaConfig,
    what: RecordTopic<'_>,
    decode: F,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<Follower<T>>
where
    T: Send + 'static,
    E: Refusal,
    F: Fn(Option<&[u8]>, Option<&[u8]>) -> std::result::Result<T, E> + Send + 'static,
{
    let decode = refusing(&what, decode, metrics);
    follow(kafka, what.topic, what.name, decode, stop)
}

/// [`follow_refusing`], read in the background (see [`follow_in_background`]).
pub fn follow_refusing_in_background<T, E, F>(
    kafka: &KafkaConfig,
    what: RecordTopic<'_>,
    decode: F,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<(Receiver<Arrival<T>>, JoinHandle<()>)>
where
    T: Send + 'static,
    E: Refusal,
    F: Fn(Option<&[u8]>, Option<&[u8]>) -> std::result::Result<T, E> + Send + 'static,
{
    let decode = refusing(&what, decode, metrics);
    follow_in_background(kafka, what.topic, what.name, decode, stop)
}

/// A decoder that logs and counts each refusal of `decode`.
fn refusing<T, E, F>(what: &RecordTopic<'_>, decode: F, metrics: Arc<Metrics>) -> Decode<T>
where
    T: Send + 'static,
    E: Refusal,
    F: Fn(Option<&[u8]>, Option<&[u8]>) -> std::result::Result<T, E> + Send + 'static,
{
    let (record, source) = (what.record, what.source);
    Box::new(
        move |at: RecordAt<'_>, key: Option<&[u8]>, value: Option<&[u8]>| {
            decode(key, value)
                .map_err(|error| {
                    tracing::warn!(
                        topic = at.topic,
                        partition = at.partition,
                        offset = at.offset,
                        code = error.code(),
                        %error,
                        "{record} record refused"
                    );
                    metrics.record_rejected(source, error.code());
                })
                .ok()
        },
    )
}

/// Reads `topic` up to its current end, then follows it on a thread named `name` until
/// `stop`. `name` also suffixes the client's group id (for broker-side visibility).
pub fn follow<T: Send + 'static>(
    kafka: &KafkaConfig,
    topic: &str,
    name: &str,
    decode: Decode<T>,
    stop: Arc<AtomicBool>,
) -> Result<Follower<T>> {
    let (consumer, ends) = open_reader(kafka, topic, name)?;
    let initial = catch_up(&consumer, topic, name, &ends, &decode, &stop)?;
    let (sender, updates) = channel();
    let topic = topic.to_owned();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            keep_following(&consumer, &topic, &decode, &stop, |update| {
                sender.send(update).is_ok()
            })
        })
        .map_err(|e| Error::io(format!("starting the {name} reader"), e))?;
    Ok(Follower {
        initial,
        updates,
        thread,
    })
}

/// What [`follow_in_background`] sends: once, the topic up to its end at start (or
/// why it could not be read), then each later change.
pub enum Arrival<T> {
    /// The changes up to the end of the topic at start, in topic order.
    Loaded(Result<Vec<T>>),
    /// A later change.
    Update(T),
}

/// Like [`follow`], but the initial read happens on the reader's thread too: the caller
/// goes on at once and takes [`Arrival::Loaded`] when it needs the topic's content (the
/// service joins its consumer group meanwhile, so a slow read does not delay the join).
pub fn follow_in_background<T: Send + 'static>(
    kafka: &KafkaConfig,
    topic: &str,
    name: &str,
    decode: Decode<T>,
    stop: Arc<AtomicBool>,
) -> Result<(Receiver<Arrival<T>>, JoinHandle<()>)> {
    let (sender, arrivals) = channel();
    let (kafka, topic, thread_name) = (kafka.clone(), topic.to_owned(), name.to_owned());
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let name = thread_name.as_str();
            let opened = open_reader(&kafka, &topic, name).and_then(|(consumer, ends)| {
                catch_up(&consumer, &topic, name, &ends, &decode, &stop)
                    .map(|initial| (consumer, initial))
            });
            match opened {
                Ok((consumer, initial)) => {
                    if sender.send(Arrival::Loaded(Ok(initial))).is_ok() {
                        keep_following(&consumer, &topic, &decode, &stop, |update| {
                            sender.send(Arrival::Update(update)).is_ok()
                        });
                    }
                }
                Err(error) => {
                    let _ = sender.send(Arrival::Loaded(Err(error)));
                }
            }
        })
        .map_err(|e| Error::io(format!("starting the {name} reader"), e))?;
    Ok((arrivals, thread))
}

/// A reader assigned every partition of `topic` from the beginning, and the end of
/// each partition that holds records.
fn open_reader(
    kafka: &KafkaConfig,
    topic: &str,
    name: &str,
) -> Result<(BaseConsumer, Vec<(i32, i64)>)> {
    let mut config = client_config(kafka, Role::Reader);
    config.set("group.id", format!("{}-{name}", kafka.group_id));
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| Error::kafka(format!("creating the {name} reader"), e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| Error::kafka(format!("reading metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::with_capacity(partitions.len());
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| Error::kafka(format!("reading the end of {topic}/{partition}"), e))?;
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| Error::kafka(format!("assigning the {name} topic"), e))?;
        if high > low {
            ends.push((partition, high));
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| Error::kafka(format!("assigning the {name} topic"), e))?;
    Ok((consumer, ends))
}

/// Reads up to `ends`, decoding as it goes.
fn catch_up<T>(
    consumer: &BaseConsumer,
    topic: &str,
    name: &str,
    ends: &[(i32, i64)],
    decode: &Decode<T>,
    stop: &AtomicBool,
) -> Result<Vec<T>> {
    let mut initial = Vec::new();
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let mut next: Vec<(i32, i64)> = ends.iter().map(|(p, _)| (*p, 0)).collect();
    let caught_up = |next: &[(i32, i64)]| {
        ends.iter()
            .all(|(p, high)| next.iter().any(|(q, at)| q == p && at >= high))
    };
    while !caught_up(&next) {
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped(format!(
                "the {name} topic {topic} did not load within {}s",
                CATCH_UP_TIMEOUT.as_secs()
            )));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.map_err(|e| Error::kafka(format!("reading {topic}"), e))?;
            if let Some(slot) = next.iter_mut().find(|(p, _)| *p == message.partition()) {
                slot.1 = message.offset() + 1;
            }
            if let Some(update) = apply_decode(decode, topic, &message) {
                initial.push(update);
            }
        }
    }
    tracing::info!(topic, records = initial.len(), "{name} topic loaded");
    Ok(initial)
}

fn apply_decode<T>(decode: &Decode<T>, topic: &str, message: &BorrowedMessage<'_>) -> Option<T> {
    let at = RecordAt {
        topic,
        partition: message.partition(),
        offset: message.offset(),
    };
    decode(at, message.key(), message.payload())
}

fn keep_following<T>(
    consumer: &BaseConsumer,
    topic: &str,
    decode: &Decode<T>,
    stop: &AtomicBool,
    send: impl Fn(T) -> bool,
) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                tracing::warn!(topic, error = %e, "compacted topic read failed; retrying")
            }
            Some(Ok(message)) => {
                if let Some(update) = apply_decode(decode, topic, &message) {
                    if !send(update) {
                        return;
                    }
                }
            }
        }
    }
}
