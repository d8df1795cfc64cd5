//! A bound on how long leaving the consumer group may take at shutdown.
//!
//! Once the engine's final commit has landed, every output is delivered and every
//! partition's position is in the state store: what is left (the group offset commit,
//! leaving the group, closing the consumer) only tells the broker. Each of those waits
//! on the group coordinator, and a coordinator in the middle of a rebalance may not
//! answer for a minute (librdkafka's socket timeout), longer than an orchestrator's
//! grace period before it kills the process. Past the deadline the service exits on
//! its own, successfully, as nothing is lost: the next owner of a partition resumes
//! from the state store's position (or, without it, from the group offset, and
//! re-deciding a few events only repeats outputs that were already published).

use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// How long leaving the group may take once the work in flight is committed: within
/// Kubernetes' default 30 s grace period, with room for the commit itself.
pub const LEAVE_GRACE: Duration = Duration::from_secs(20);

/// Disarms the deadline when dropped (the shutdown finished in time).
#[derive(Debug)]
pub struct ExitDeadline {
    _disarm: SyncSender<()>,
}

/// Arms the deadline: unless the returned guard is dropped within `grace`, the process
/// exits with status 0 after logging why.
pub fn arm(grace: Duration) -> ExitDeadline {
    let (disarm, armed) = sync_channel::<()>(0);
    let spawned = std::thread::Builder::new()
        .name("exit-deadline".into())
        .spawn(move || {
            if armed.recv_timeout(grace) == Err(RecvTimeoutError::Timeout) {
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    "leaving the consumer group did not finish in time; exiting anyway (outputs are delivered and the state store holds every partition's position)"
                );
                std::process::exit(0);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no deadline on leaving the consumer group");
    }
    ExitDeadline { _disarm: disarm }
}
