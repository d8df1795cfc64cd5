//! Keeping the engine's registry current while the service runs: the registry file is
//! re-read when it changes, and the registry topic's records are applied as they arrive.
//! Both are applied on the engine thread between batches, so a change takes effect at a
//! batch boundary and never in the middle of one.

use super::watched_file::WatchedFile;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::setup::registry_file;
use crate::config::ServiceConfig;
use crate::error::{Error, Result};
use crate::identity::{Registry, RegistryUpdate};
use crate::kafka::registry_topic::follow;
use crate::kafka::topics::{create_compacted_topic, topic_exists};
use crate::pipeline::Engine;
use crate::signing::TrustedKeys;
use crate::telemetry::{Metrics, RegistrySource, ReloadResult};

/// Sources of registry changes after start.
#[derive(Default)]
pub(super) struct RegistryFeed {
    file: Option<FileWatch>,
    updates: Option<Receiver<RegistryUpdate>>,
}

struct FileWatch {
    file: WatchedFile,
    trust: TrustedKeys,
}

/// The registry as it stands at start, the feed of later changes, and the topic reader
/// thread (stopped through `stop`).
pub(super) struct OpenedRegistry {
    pub registry: Option<Registry>,
    pub feed: RegistryFeed,
    pub reader: Option<JoinHandle<()>>,
}

/// Loads the registry file and the registry topic named by `config`.
pub(super) fn open_registry(
    config: &ServiceConfig,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<OpenedRegistry> {
    let mut opened = OpenedRegistry {
        registry: None,
        feed: RegistryFeed::default(),
        reader: None,
    };
    let trust = TrustedKeys::load(&config.registry.trusted_keys)?;
    if let Some(path) = &config.registry.file {
        let registry = registry_file(path, Some(&trust), Some(&metrics))?;
        opened.feed.file = Some(FileWatch {
            file: WatchedFile::new(path, registry.agent_ids().map(str::to_owned).collect()),
            trust: trust.clone(),
        });
        opened.registry = Some(registry);
    }
    // Enforcement is the config's word alone: an enforced registry exists from the
    // start, even empty (every agent is then unregistered until a record names it), and
    // a file's registry is not enforced when the config says so.
    if config.registry.enforce {
        opened.registry.get_or_insert_with(Registry::default);
    }
    if let Some(registry) = opened.registry.take() {
        opened.registry = Some(registry.with_enforce(config.registry.enforce));
    }
    let kafka = &config.kafka;
    let topic = &config.registry.topic;
    if !topic_exists(kafka, topic)? {
        match (config.registry.topic_required, kafka.create_topics) {
            (false, _) => {
                tracing::info!(topic = %topic, "no registry topic; identities come from the registry file only");
                return Ok(opened);
            }
            (true, true) => create_compacted_topic(kafka, topic)?,
            (true, false) => return Err(Error::MissingTopics(vec![topic.clone()])),
        }
    }
    if trust.is_empty() {
        tracing::warn!(topic = %topic, "registry topic records are not signature-checked: anyone who can write to it can register agents or widen boundaries ([registry] trusted_keys)");
    } else {
        tracing::info!(topic = %topic, keys = ?trust.key_ids(), "registry topic records need a trusted signature");
    }
    let follower = follow(kafka, topic, Some(trust), metrics, stop)?;
    // Without a file or enforcement, the topic's records make a registry that is not
    // enforced: they supply facts about the agents they name and flag no other.
    if !follower.initial.is_empty() {
        let registry = opened.registry.get_or_insert_with(Registry::default);
        for update in follower.initial {
            registry.apply(update);
        }
    }
    opened.feed.updates = Some(follower.updates);
    opened.reader = Some(follower.thread);
    Ok(opened)
}

impl RegistryFeed {
    /// Applies every change that arrived since the last call. Returns how many.
    pub(super) fn poll(&mut self, engine: &mut Engine, metrics: &Metrics) -> usize {
        let mut from_topic = 0;
        if let Some(updates) = &self.updates {
            while let Ok(update) = updates.try_recv() {
                tracing::debug!(?update, "registry change");
                engine.apply(update);
                from_topic += 1;
            }
        }
        let from_file = match &mut self.file {
            Some(watch) => watch.reload_if_changed(engine, metrics),
            None => 0,
        };
        if from_topic + from_file > 0 {
            metrics.record_registry_changes(RegistrySource::Topic, from_topic);
            metrics.record_registry_changes(RegistrySource::File, from_file);
            metrics.set_registry_agents(engine.registry().map_or(0, Registry::len));
        }
        from_topic + from_file
    }
}

impl FileWatch {
    /// Re-reads the file if its modification time changed. An invalid new version is
    /// logged and ignored: the registry in force stays until the file is fixed.
    fn reload_if_changed(&mut self, engine: &mut Engine, metrics: &Metrics) -> usize {
        if !self.file.changed() {
            return 0;
        }
        let registry = match registry_file(&self.file.path, Some(&self.trust), Some(metrics)) {
            Ok(registry) => registry,
            Err(error) => {
                tracing::warn!(file = %self.file.path.display(), %error, "registry file change ignored");
                metrics.record_registry_reload(ReloadResult::Rejected);
                return 0;
            }
        };
        metrics.record_registry_reload(ReloadResult::Applied);
        let agents: BTreeSet<String> = registry.agent_ids().map(str::to_owned).collect();
        let count = agents.len();
        let removed = self.file.replace_keys(agents);
        for agent in &removed {
            engine.apply(RegistryUpdate::Remove(agent.clone()));
        }
        let mut changes = removed.len();
        for record in registry.into_records() {
            engine.apply(RegistryUpdate::Upsert(Box::new(record)));
            changes += 1;
        }
        tracing::info!(file = %self.file.path.display(), agents = count, removed = removed.len(), "registry file reloaded");
        changes
    }
}
