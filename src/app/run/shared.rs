//! Fleet-wide knowledge shared by the group's instances through compacted topics (see
//! [`crate::kafka::shared_topic`]): what other instances learned is merged on the engine
//! thread between batches, and what this one learned is published before the states
//! that learned it are committed. The topics are read in the background from start, so
//! the consumer joins its group meanwhile; the engine thread waits for them before its
//! first batch.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServiceConfig;
use crate::error::Result;
use crate::kafka::compacted::Arrival;
use crate::kafka::producer::{Output, OutputProducer};
use crate::kafka::shared_topic::{encode, follow, SharedRecord};
use crate::kafka::topics::{create_compacted_topic, topic_exists};
use crate::pipeline::{CredentialUse, Engine, FleetRecord};
use crate::telemetry::Metrics;

use super::sink::publish;

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

impl EngineShared for FleetRecord {
    fn share(engine: &mut Engine) {
        engine.share_fleet();
    }
    fn take(engine: &mut Engine) -> Vec<Self> {
        engine.take_fleet_records()
    }
    fn merge(engine: &mut Engine, record: &Self) {
        engine.merge_fleet_record(record);
    }
}

/// The engine thread's end of one shared topic.
pub(super) struct SharedFeed<T> {
    topic: String,
    arrivals: Receiver<Arrival<T>>,
}

/// Both shared topics (`None` where the topic is missing and may not be created).
pub(super) struct SharedFeeds {
    pub credentials: Option<SharedFeed<CredentialUse>>,
    pub fleet: Option<SharedFeed<FleetRecord>>,
    /// Where the fleet alerts owed after a merge go (the alerts topic).
    pub alerts_topic: String,
    /// Counts those alerts with the batches'.
    pub metrics: Arc<Metrics>,
}

/// The shared feeds and their reader threads.
pub(super) struct OpenedShared {
    pub feeds: SharedFeeds,
    pub readers: Vec<JoinHandle<()>>,
}

/// Opens both shared topics and starts reading them ([`SharedFeeds::load`] takes what
/// they hold).
pub(super) fn open_shared(
    config: &ServiceConfig,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
) -> Result<OpenedShared> {
    let mut readers = Vec::new();
    let topics = &config.kafka.topics;
    let credentials = open_one(config, &topics.credentials, metrics, stop)?;
    let fleet = open_one(config, &topics.fleet, metrics, stop)?;
    let feeds = SharedFeeds {
        credentials: credentials.map(|(feed, reader)| {
            readers.push(reader);
            feed
        }),
        fleet: fleet.map(|(feed, reader)| {
            readers.push(reader);
            feed
        }),
        alerts_topic: topics.alerts.clone(),
        metrics: Arc::clone(metrics),
    };
    Ok(OpenedShared { feeds, readers })
}

fn open_one<T: EngineShared>(
    config: &ServiceConfig,
    topic: &str,
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
    let (arrivals, reader) = follow::<T>(kafka, topic, Arc::clone(metrics), Arc::clone(stop))?;
    let feed = SharedFeed {
        topic: topic.to_owned(),
        arrivals,
    };
    Ok(Some((feed, reader)))
}

impl<T: EngineShared> SharedFeed<T> {
    /// Waits for the topic's content at start, merges it and turns sharing on.
    fn load(&self, engine: &mut Engine) -> Result<()> {
        let initial = loop {
            match self.arrivals.recv() {
                Ok(Arrival::Loaded(initial)) => break initial?,
                Ok(Arrival::Update(record)) => T::merge(engine, &record),
                Err(_) => {
                    return Err(crate::error::Error::Stopped(format!(
                        "the {} reader stopped before loading {}",
                        T::NAME,
                        self.topic
                    )))
                }
            }
        };
        for record in &initial {
            T::merge(engine, record);
        }
        T::share(engine);
        tracing::info!(topic = %self.topic, shared = T::NAME, records = initial.len(), "shared topic merged");
        Ok(())
    }

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
        for arrival in self.arrivals.try_iter() {
            if let Arrival::Update(record) = arrival {
                T::merge(engine, &record);
            }
        }
        Ok(())
    }
}

impl SharedFeeds {
    /// Takes what every shared topic held at start into `engine`, waiting for the
    /// readers; call before the first batch.
    pub fn load(&self, engine: &mut Engine) -> Result<()> {
        if let Some(feed) = &self.credentials {
            feed.load(engine)?;
        }
        if let Some(feed) = &self.fleet {
            feed.load(engine)?;
        }
        Ok(())
    }

    /// Exchanges every shared topic (see [`SharedFeed`]).
    pub fn exchange(&self, engine: &mut Engine, producer: &OutputProducer) -> Result<()> {
        if let Some(feed) = &self.credentials {
            feed.exchange(engine, producer)?;
        }
        if let Some(feed) = &self.fleet {
            feed.exchange(engine, producer)?;
            self.publish_late_fleet_alerts(engine, producer)?;
        }
        Ok(())
    }

    /// Publishes the fleet alerts the engine owes the group after the merge (see
    /// [`Engine::take_late_fleet_alerts`]): they settle with the outputs at the next
    /// commit, like a batch's. They answer no consumed record, so a crash before that
    /// loses them unless the restarted member decides the naming sighting again (it
    /// then owes the alert again, under the same id).
    fn publish_late_fleet_alerts(
        &self,
        engine: &mut Engine,
        producer: &OutputProducer,
    ) -> Result<()> {
        let alerts = engine.take_late_fleet_alerts();
        for alert in &alerts {
            let fleet = alert.fleet.as_ref();
            tracing::info!(
                alert_id = %alert.alert_id,
                pattern = fleet.map_or("", |f| f.pattern.as_str()),
                system = fleet.map_or("", |f| f.system.as_str()),
                agents = fleet.map_or(0, |f| f.agents),
                "fleet alert announced on merging another instance's late announcement"
            );
        }
        publish(
            producer,
            &mut Vec::new(),
            Output::Alert,
            &self.alerts_topic,
            alerts.iter().map(|a| (a.agent_id.as_str(), a)),
        )?;
        self.metrics.record_alerts(&alerts);
        Ok(())
    }
}
