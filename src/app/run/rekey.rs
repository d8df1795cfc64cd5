//! The rekey router's thread (`[kafka] rekey`, see [`crate::kafka::rekey`]): started
//! before the engine's consumer joins its group, stopped after the engine's final commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServiceConfig;
use crate::error::{Error, Result};
use crate::kafka::rekey::Router;
use crate::model::Limits;
use crate::telemetry::Metrics;

/// A running router.
pub(super) struct RouterThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64>>,
}

/// Starts the router if `config` asks for re-keying.
pub(super) fn start(
    config: &ServiceConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<RouterThread>> {
    if !config.kafka.rekey {
        return Ok(None);
    }
    let router = Router::new(
        &config.kafka,
        Limits {
            max_message_bytes: config.max_event_bytes,
        },
        config.shutdown_timeout,
        Arc::clone(metrics),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("rekey".into())
        .spawn(move || router.run(&stopping))
        .map_err(|e| Error::io("starting the rekey thread", e))?;
    tracing::info!(from = %config.kafka.topics.events, to = %config.kafka.topics.repartition, "re-keying events by agent");
    Ok(Some(RouterThread { stop, thread }))
}

impl RouterThread {
    /// True once the router has stopped on its own: it only returns early on an
    /// error (which [`RouterThread::stop`] then gives), and with it stopped nothing
    /// reaches the repartition topic the engine consumes.
    pub(super) fn has_stopped(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops forwarding, and waits until what was forwarded is acknowledged and
    /// committed. Returns how many records were forwarded.
    pub(super) fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| Error::Stopped("the rekey thread panicked".into()))?
    }
}
