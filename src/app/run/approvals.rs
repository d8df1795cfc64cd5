//! Keeping the engine's approvals current while the service runs: the approvals file is
//! re-read when it changes, and the approvals topic's records are applied as they
//! arrive. Like registry changes, both are applied on the engine thread between
//! batches; events that waited for an approval that has now arrived are decided at the
//! start of the next batch (see [`crate::approvals`]).

use super::watched_file::WatchedFile;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::approvals::{read_approvals_file, UNVERIFIED_WARNING};
use crate::approvals::{ApprovalStore, ApprovalUpdate};
use crate::config::ServiceConfig;
use crate::error::{Error, Result};
use crate::kafka::approvals_topic::follow;
use crate::kafka::topics::{create_compacted_topic, topic_exists};
use crate::pipeline::Engine;
use crate::signing::TrustedKeys;
use crate::telemetry::{ApprovalSource, Metrics};

/// Sources of approval changes after start.
#[derive(Default)]
pub(super) struct ApprovalFeed {
    file: Option<FileWatch>,
    updates: Option<Receiver<ApprovalUpdate>>,
}

struct FileWatch {
    file: WatchedFile,
    trust: TrustedKeys,
}

/// The approvals as they stand at start (`None`: no source, approvals unverified), the
/// feed of later changes, and the topic reader thread (stopped through `stop`).
pub(super) struct OpenedApprovals {
    pub store: Option<ApprovalStore>,
    pub feed: ApprovalFeed,
    pub reader: Option<JoinHandle<()>>,
}

/// Loads the approvals file and topic named by `config`.
pub(super) fn open_approvals(
    config: &ServiceConfig,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<OpenedApprovals> {
    let mut opened = OpenedApprovals {
        store: None,
        feed: ApprovalFeed::default(),
        reader: None,
    };
    let settings = &config.approvals;
    if !settings.enabled() {
        tracing::warn!("{UNVERIFIED_WARNING}");
        return Ok(opened);
    }
    let trust = TrustedKeys::load(&settings.trusted_keys)?;
    if trust.is_empty() {
        tracing::warn!("approval records are not signature-checked: anyone who can write an approval source can approve any action ([approvals] trusted_keys)");
    } else {
        tracing::info!(keys = ?trust.key_ids(), "approval records need a trusted signature");
    }
    let mut store = ApprovalStore::new(settings.grace_ms);
    if let Some(path) = &settings.file {
        let found = read_approvals_file(path, Some(&trust), Some(&metrics))?;
        let ids = found.approvals.iter().map(|a| a.id().to_owned()).collect();
        for approval in found.approvals {
            store.apply(ApprovalUpdate::Upsert(Box::new(approval)));
        }
        tracing::info!(file = %path.display(), approvals = store.len(), refused = found.problems.len(), "approvals file loaded");
        opened.feed.file = Some(FileWatch {
            file: WatchedFile::new(path, ids),
            trust: trust.clone(),
        });
    }
    if let Some(topic) = &settings.topic {
        let kafka = &config.kafka;
        if !topic_exists(kafka, topic)? {
            if !kafka.create_topics {
                return Err(Error::MissingTopics(vec![topic.clone()]));
            }
            create_compacted_topic(kafka, topic)?;
        }
        let follower = follow(kafka, topic, Some(trust), Arc::clone(&metrics), stop)?;
        for update in follower.initial {
            store.apply(update);
        }
        opened.feed.updates = Some(follower.updates);
        opened.reader = Some(follower.thread);
    }
    tracing::info!(
        approvals = store.len(),
        grace_ms = settings.grace_ms,
        "approvals verified: high_risk_action needs a known approval"
    );
    metrics.set_approvals(store.len(), 0);
    opened.store = Some(store);
    Ok(opened)
}

impl ApprovalFeed {
    /// Applies every change that arrived since the last call. Returns how many.
    pub(super) fn poll(&mut self, engine: &mut Engine, metrics: &Metrics) -> usize {
        let mut from_topic = 0;
        if let Some(updates) = &self.updates {
            while let Ok(update) = updates.try_recv() {
                engine.apply_approval(update);
                from_topic += 1;
            }
        }
        let from_file = match &mut self.file {
            Some(watch) => watch.reload_if_changed(engine, metrics),
            None => 0,
        };
        if from_topic + from_file > 0 {
            metrics.record_approval_changes(ApprovalSource::Topic, from_topic);
            metrics.record_approval_changes(ApprovalSource::File, from_file);
        }
        if let Some(store) = engine.approvals() {
            metrics.set_approvals(store.len(), engine.agents_holding());
        }
        from_topic + from_file
    }
}

impl FileWatch {
    /// Re-reads the file if its modification time changed: its records are applied,
    /// and approvals that were in the file and are gone from it are withdrawn.
    fn reload_if_changed(&mut self, engine: &mut Engine, metrics: &Metrics) -> usize {
        if !self.file.changed() {
            return 0;
        }
        let path = &self.file.path;
        let found = match read_approvals_file(path, Some(&self.trust), Some(metrics)) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, code = error.code(), "approvals file unreadable; approvals in force kept");
                return 0;
            }
        };
        let ids: BTreeSet<String> = found.approvals.iter().map(|a| a.id().to_owned()).collect();
        let count = ids.len();
        let withdrawn = self.file.replace_keys(ids);
        let mut changes = withdrawn.len();
        for id in withdrawn {
            engine.apply_approval(ApprovalUpdate::Withdraw(id));
        }
        for approval in found.approvals {
            engine.apply_approval(ApprovalUpdate::Upsert(Box::new(approval)));
            changes += 1;
        }
        tracing::info!(file = %self.file.path.display(), approvals = count, refused = found.problems.len(), "approvals file reloaded");
        changes
    }
}
