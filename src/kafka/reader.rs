//! Reading a topic from outside the service's consumer group, for `agentwatch tail`:
//! a throwaway group of its own, so following a topic never moves the service's
//! offsets or takes partitions from it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use super::client::{client_config, Role};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};

/// One record as a reader sees it.
#[derive(Debug)]
pub struct TopicRecord<'a> {
    /// The record's value (empty for a tombstone).
    pub payload: &'a [u8],
    /// Its headers whose names start with `agentwatch.` (dead-letter details), in order.
    pub agentwatch_headers: Vec<(&'a str, String)>,
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still in the topic.
    Beginning,
    /// The next record to arrive.
    End,
}

/// Reads `topic` and hands each record to `visit` until `visit` answers false or
/// `keep_going` (asked between polls, every 200 ms at most) does.
pub fn read_topic(
    kafka: &KafkaConfig,
    topic: &str,
    start: StartAt,
    keep_going: &mut dyn FnMut() -> bool,
    visit: &mut dyn FnMut(TopicRecord<'_>) -> Result<bool>,
) -> Result<()> {
    let group = format!(
        "{}-tail-{}-{}",
        kafka.group_id,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let reset = match start {
        StartAt::Beginning => "earliest",
        StartAt::End => "latest",
    };
    let consumer: BaseConsumer = client_config(kafka, Role::Reader)
        .set("group.id", &group)
        .set("auto.offset.reset", reset)
        .create()
        .map_err(|e| Error::kafka("creating consumer", e))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| Error::kafka(format!("subscribing to {topic}"), e))?;
    while keep_going() {
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                continue;
            }
            Some(Ok(message)) => message,
        };
        let agentwatch_headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .filter(|h| h.key.starts_with("agentwatch."))
                    .map(|h| {
                        let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key, value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let record = TopicRecord {
            payload: message.payload().unwrap_or_default(),
            agentwatch_headers,
        };
        if !visit(record)? {
            break;
        }
    }
    Ok(())
}
