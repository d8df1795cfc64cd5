//! Writing state in the background: RocksDB batch writes on their own thread, so the
//! thread that consumes and scores events never waits for the disk.
//!
//! At most one batch is in flight. The engine waits for it before it encodes the next
//! one and before it evicts anything, so an agent that is reloaded from RocksDB always
//! finds its latest committed state there.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::state::{StateBatch, StateStore};
use crate::telemetry::Metrics;

/// The writer thread and its two channels.
pub(super) struct StateWriter {
    jobs: Option<SyncSender<StateBatch>>,
    landed: Receiver<Result<(usize, Duration)>>,
    thread: Option<JoinHandle<()>>,
    in_flight: bool,
}

impl StateWriter {
    pub(super) fn start(store: Arc<StateStore>, metrics: Option<Arc<Metrics>>) -> Result<Self> {
        let (jobs, incoming) = sync_channel::<StateBatch>(1);
        let (report, landed) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                for batch in incoming {
                    let started = Instant::now();
                    let agents = batch.agents();
                    let result = store.write(batch).map(|_| (agents, started.elapsed()));
                    if let (Some(metrics), Ok((_, elapsed))) = (&metrics, &result) {
                        metrics.record_flush(*elapsed);
                    }
                    if report.send(result).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::io("starting the state writer thread", e))?;
        Ok(StateWriter {
            jobs: Some(jobs),
            landed,
            thread: Some(thread),
            in_flight: false,
        })
    }

    /// Hands a batch to the writer. The previous one must have landed.
    pub(super) fn submit(&mut self, batch: StateBatch) -> Result<()> {
        debug_assert!(!self.in_flight, "one batch in flight at a time");
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(batch));
        match sent {
            Some(Ok(())) => {
                self.in_flight = true;
                Ok(())
            }
            _ => Err(writer_gone()),
        }
    }

    /// Waits for the batch in flight, if any: `Some((agents, write time))` once it landed.
    pub(super) fn wait(&mut self) -> Result<Option<(usize, Duration)>> {
        if !self.in_flight {
            return Ok(None);
        }
        self.in_flight = false;
        match self.landed.recv() {
            Ok(result) => result.map(Some),
            Err(_) => Err(writer_gone()),
        }
    }
}

fn writer_gone() -> Error {
    Error::io(
        "state writer",
        std::io::Error::other("the state writer thread stopped"),
    )
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        let _ = self.wait();
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
