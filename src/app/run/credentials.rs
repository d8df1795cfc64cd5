//! The credential ledger shared by every instance through the credentials topic (see
//! [`crate::kafka::credentials_topic`]): uses other instances learned are merged on the
//! engine thread between batches, and uses learned here are published as their states
//! are committed.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServiceConfig;
use crate::error::Result;
use crate::kafka::credentials_topic::{encode, follow, key};
use crate::kafka::producer::OutputProducer;
use crate::kafka::topics::{create_compacted_topic, topic_exists};
use crate::pipeline::{CredentialUse, Engine};
use crate::telemetry::{Metrics, Output};

/// The engine thread's end of the shared ledger.
pub(super) struct CredentialFeed {
    topic: String,
    updates: Receiver<CredentialUse>,
}

/// The ledger as the topic holds it at start, the feed of later uses and the reader.
pub(super) struct OpenedCredentials {
    pub initial: Vec<CredentialUse>,
    pub feed: Option<CredentialFeed>,
    pub reader: Option<JoinHandle<()>>,
}

/// Opens the credentials topic, creating it if the config allows; without it, each
/// instance keeps its own ledger (and says so).
pub(super) fn open_credentials(
    config: &ServiceConfig,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<OpenedCredentials> {
    let kafka = &config.kafka;
    let topic = &config.kafka.topics.credentials;
    if !topic_exists(kafka, topic)? {
        if !kafka.create_topics {
            tracing::warn!(topic = %topic, "no credentials topic: credentials shared between agents on different instances go unseen (create it compacted, or set create_topics)");
            return Ok(OpenedCredentials {
                initial: Vec::new(),
                feed: None,
                reader: None,
            });
        }
        create_compacted_topic(kafka, topic)?;
    }
    let follower = follow(kafka, topic, metrics, stop)?;
    Ok(OpenedCredentials {
        initial: follower.initial,
        feed: Some(CredentialFeed {
            topic: topic.clone(),
            updates: follower.updates,
        }),
        reader: Some(follower.thread),
    })
}

impl CredentialFeed {
    /// Merges the uses other instances published since the last call.
    pub fn poll(&self, engine: &mut Engine) {
        for shared in self.updates.try_iter() {
            engine.merge_credential_use(&shared);
        }
    }

    /// Publishes the uses this instance learned since the last call. They settle with
    /// the outputs, before the next commit's states are written.
    pub fn publish(&self, engine: &mut Engine, producer: &OutputProducer) -> Result<()> {
        for shared in engine.take_credential_uses() {
            let value = encode(&shared)?;
            let key = key(&shared);
            producer.send(
                Output::Credentials,
                &self.topic,
                Some(key.as_bytes()),
                &value,
                None,
            )?;
        }
        Ok(())
    }
}
