//! Fleet-wide knowledge shared by every instance through compacted topics (see
//! [`crate::kafka::shared_topic`]): what other instances learned is merged on the engine
//! thread between batches, and what this one learned is published before the states
//! that learned it are committed.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServiceConfig;
use crate::error::Result;
use crate::kafka::producer::OutputProducer;
use crate::kafka::shared_topic::{encode, follow, SharedRecord};
use crate::kafka::topics::{create_compacted_topic, topic_exists};
use crate::pipeline::{CredentialUse, Engine, FleetSighting};
use crate::telemetry::Metrics;

/// How a shared fact meets the engine.
pub(super) trait EngineShared: SharedRecord {
    /// Starts keeping what the engine learns for publishing.
    fn share(engine: &mut Engine);
    /// What the engine learned since the last call.
    fn take(engine: &mut Engine) -> Vec<Self>;
    /// Merges what another instance learned.
    fn merge(engine: &mut Engine, record: &Self);
}

impl EngineShared for CredentialUse {
    fn share(engine: &mut Engine) {
        engine.share_credentials();
    }
    fn take(engine: &mut Engine) -> Vec<Self> {
        engine.take_credential_uses()
    }
    fn merge(engine: &mut Engine, record: &Self) {
        engine.merge_credential_use(record);
    }
}

impl EngineShared for FleetSighting {
    fn share(engine: &mut Engine) {
        engine.share_fleet();
    }
    fn take(engine: &mut Engine) -> Vec<Self> {
        engine.take_fleet_sightings()
    }
    fn merge(engine: &mut Engine, record: &Self) {
        engine.merge_fleet_sighting(record);
    }
}

/// The engine thread's end of one shared topic.
pub(super) struct SharedFeed<T> {
    topic: String,
    updates: Receiver<T>,
}

/// Both shared topics (`None` where the topic is missing and may not be created).
pub(super) struct SharedFeeds {
    pub credentials: Option<SharedFeed<CredentialUse>>,
    pub fleet: Option<SharedFeed<FleetSighting>>,
}

/// The shared feeds and their reader threads.
pub(super) struct OpenedShared {
    pub feeds: SharedFeeds,
    pub readers: Vec<JoinHandle<()>>,
}

/// Opens both shared topics, loads them into `engine` and turns sharing on.
pub(super) fn open_shared(
    config: &ServiceConfig,
    engine: &mut Engine,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
) -> Result<OpenedShared> {
    let mut readers = Vec::new();
    let topics = &config.kafka.topics;
    let credentials = open_one(config, &topics.credentials, engine, metrics, stop)?;
    let fleet = open_one(config, &topics.fleet, engine, metrics, stop)?;
    let feeds = SharedFeeds {
        credentials: credentials.map(|(feed, reader)| {
            readers.push(reader);
            feed
        }),
        fleet: fleet.map(|(feed, reader)| {
            readers.push(reader);
            feed
        }),
    };
    Ok(OpenedShared { feeds, readers })
}

fn open_one<T: EngineShared>(
    config: &ServiceConfig,
    topic: &str,
    engine: &mut Engine,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
) -> Result<Option<(SharedFeed<T>, JoinHandle<()>)>> {
    let kafka = &config.kafka;
    if !topic_exists(kafka, topic)? {
        if !kafka.create_topics {
            tracing::warn!(topic = %topic, shared = T::NAME, "shared topic missing: this instance sees only its own agents here (create it compacted, or set create_topics)");
            return Ok(None);
        }
        create_compacted_topic(kafka, topic)?;
    }
    let follower = follow::<T>(kafka, topic, Arc::clone(metrics), Arc::clone(stop))?;
    T::share(engine);
    for record in &follower.initial {
        T::merge(engine, record);
    }
    tracing::info!(topic = %topic, shared = T::NAME, records = follower.initial.len(), "shared topic loaded");
    let feed = SharedFeed {
        topic: topic.to_owned(),
        updates: follower.updates,
    };
    Ok(Some((feed, follower.thread)))
}

impl<T: EngineShared> SharedFeed<T> {
    /// Publishes what the engine learned since the last call, then merges what the
    /// other instances published. Published records settle with the outputs, before
    /// the next commit's states are written.
    fn exchange(&self, engine: &mut Engine, producer: &OutputProducer) -> Result<()> {
        for record in T::take(engine) {
            let key = record.key();
            producer.send(
                T::OUTPUT,
                &self.topic,
                Some(key.as_bytes()),
                &encode(&record)?,
                None,
            )?;
        }
        for record in self.updates.try_iter() {
            T::merge(engine, &record);
        }
        Ok(())
    }
}

impl SharedFeeds {
    /// Exchanges every shared topic (see [`SharedFeed`]).
    pub fn exchange(&self, engine: &mut Engine, producer: &OutputProducer) -> Result<()> {
        if let Some(feed) = &self.credentials {
            feed.exchange(engine, producer)?;
        }
        if let Some(feed) = &self.fleet {
            feed.exchange(engine, producer)?;
        }
        Ok(())
    }
}
