//! Reading and decoding one batch ahead, on a thread of its own, while the engine works
//! on the batch before: the file and stdin path's use of the second core.
//!
//! Reading lines (the kernel's copy, finding newlines) and decoding them (scanning the
//! JSON, checking UTF-8, parsing the time) need nothing from the engine, so both run
//! beside it and the engine's thread only judges:
//!
//! ```text
//!  reading thread:  read lines ─► LineBatch ─► decode ─► DecodedLines ─┐
//!  engine's thread:                                                    └─► engine
//!                   ◄──────────── spare LineBatch (buffers reused) ◄────────┘
//! ```
//!
//! Reading used to stay on the engine's thread, so that the reader need not be `Send`
//! (stdin's lock is not); it was 7–9% of that thread's time on realistic traffic. The
//! thread is scoped ([`std::thread::Scope`]): a borrowed reader (a slice, a simulation
//! rendered as lines) works as well as a file, and the thread is joined before the run
//! returns. One cost of that: a run that fails while its reader waits on a live pipe
//! returns once the pipe yields one more line or closes (the thread is told to stop and
//! gives up after the line in progress).
//!
//! A [`DecodedLines`] keeps the lines and the events decoded from them together, so it
//! crosses threads as one value (see [`super::decoded`]).

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use super::decoded::DecodedLines;
use super::lines::{LineBatch, LineReader};
use crate::error::{Error, Result};
use crate::model::Limits;

/// Where a batch ends in its input: the source's position just past it, and how many
/// lines it consumed (blank ones too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The input position after the batch.
    pub position: u64,
    /// Lines consumed by the batch.
    pub lines: u64,
}

/// What the reading thread hands over next, in input order.
#[derive(Debug)]
pub enum Ahead {
    /// A batch, decoded, and where it ends.
    Batch(DecodedLines, Tag),
    /// The input has no more lines.
    Ended,
    /// The run's line budget is spent (the rest is left for a later run).
    Stopped,
    /// Reading failed: the lines of the batch it failed in are lost to this run.
    Failed(Error),
}

/// How much to read: lines per batch, and at most how many in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Lines per batch.
    pub batch_size: u64,
    /// Lines in this run (`None`: until the input ends).
    pub max_lines: Option<u64>,
}

/// Batches decoded and waiting while the engine works on one: the thread reads the
/// next while one waits, so two are ahead of the engine at most.
const WAITING: usize = 1;

/// The reading thread's side: a handle for what it hands over, and the way back for
/// spent batches' buffers.
pub struct ReadAhead<'scope> {
    /// `None` once dropped: a thread blocked handing a batch over is then released.
    next: Option<Receiver<Ahead>>,
    spares: Sender<LineBatch>,
    /// Set when the engine's side is gone: the thread stops after the line in progress.
    gone: Arc<AtomicBool>,
    worker: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> ReadAhead<'scope> {
    /// Starts reading `lines` in `scope`, decoding each batch under `limits`.
    pub fn start<'env, R: BufRead + Send + 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        lines: LineReader<R>,
        budget: Budget,
        limits: Limits,
    ) -> Result<Self> {
        let (out, next) = sync_channel(WAITING);
        let (spares, returned) = channel();
        let gone = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&gone);
        let worker = std::thread::Builder::new()
            .name("read-decode".into())
            .spawn_scoped(scope, move || {
                read_ahead(lines, budget, limits, &out, &returned, &stop);
            })
            .map_err(|e| Error::io("starting the reading thread", e))?;
        Ok(ReadAhead {
            next: Some(next),
            spares,
            gone,
            worker: Some(worker),
        })
    }

    /// What comes next (waits for it).
    pub fn take(&mut self) -> Result<Ahead> {
        match self.next.as_ref().map(Receiver::recv) {
            Some(Ok(next)) => Ok(next),
            _ => Err(self.stopped()),
        }
    }

    /// Gives a spent batch's buffers back for the thread to refill.
    pub fn recycle(&self, batch: LineBatch) {
        // The thread may have finished; the buffers are then simply dropped.
        let _ = self.spares.send(batch);
    }

    /// The thread is gone without saying why: a panic there goes on here, with its
    /// message, as it would have had reading stayed on this thread.
    fn stopped(&mut self) -> Error {
        if let Some(Err(panic)) = self.worker.take().map(ScopedJoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
        Error::Stopped("the reading thread stopped".into())
    }
}

impl Drop for ReadAhead<'_> {
    /// Stops the thread and joins it here: released from a blocked hand-over and told to
    /// give up after its line in progress, it ends soon; and a panic there (after an
    /// error on this side, say) is dropped with it instead of becoming the scope's panic,
    /// so the run returns its error.
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
        self.next = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The reading thread: batches of `lines` within `budget`, each decoded and handed over
/// through `out`, reusing the buffers `spares` brings back. It ends after handing over
/// why it stopped, or when the engine's side is gone (`gone`, or `out` closed).
fn read_ahead<R: BufRead>(
    mut lines: LineReader<R>,
    budget: Budget,
    limits: Limits,
    out: &SyncSender<Ahead>,
    spares: &Receiver<LineBatch>,
    gone: &AtomicBool,
) {
    let mut consumed = 0u64;
    loop {
        let room = budget.max_lines.map_or(budget.batch_size, |max| {
            max.saturating_sub(consumed).min(budget.batch_size)
        });
        if room == 0 {
            let _ = out.send(Ahead::Stopped);
            return;
        }
        let mut batch = spares.try_recv().unwrap_or_default();
        batch.clear();
        let filled = lines.fill_unless(&mut batch, room, gone);
        if gone.load(Ordering::Relaxed) {
            return;
        }
        let next = match filled {
            Ok(0) => Ahead::Ended,
            Ok(read) => {
                consumed += read;
                let tag = Tag {
                    position: lines.position(),
                    lines: read,
                };
                Ahead::Batch(DecodedLines::decode_all(batch, limits), tag)
            }
            Err(e) => Ahead::Failed(Error::io("reading input", e)),
        };
        let last = !matches!(next, Ahead::Batch(..));
        if out.send(next).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::decoded::tests::VALID;
    use crate::drive::Records;
    use crate::model::decode_event;

    fn budget(batch_size: u64, max_lines: Option<u64>) -> Budget {
        Budget {
            batch_size,
            max_lines,
        }
    }

    #[test]
    fn a_batch_read_ahead_gives_what_decoding_in_place_gives() {
        let text = format!("{VALID}\nnot json\n");
        let limits = Limits::default();
        std::thread::scope(|scope| {
            let lines = LineReader::new(text.as_bytes());
            let mut ahead = ReadAhead::start(scope, lines, budget(8, None), limits).unwrap();
            let Ahead::Batch(decoded, tag) = ahead.take().unwrap() else {
                panic!("a batch first");
            };
            assert_eq!(
                tag,
                Tag {
                    position: 2,
                    lines: 2
                }
            );
            assert_eq!(decoded.len(), 2);
            for (index, line) in [VALID, "not json"].iter().enumerate() {
                let in_place = decode_event(line.as_bytes(), &limits);
                let lent = decoded.borrow_dependent().get(index, &limits);
                assert_eq!(lent, Some(in_place.as_ref().map_err(Clone::clone)));
                assert_eq!(
                    decoded
                        .decode(index, &limits)
                        .map(std::borrow::Cow::into_owned),
                    in_place
                );
            }
            assert!(matches!(ahead.take().unwrap(), Ahead::Ended));
        });
    }

    #[test]
    fn batches_come_in_input_order_and_the_line_budget_stops_the_run() {
        let text: String = (0..7).map(|n| format!("line {n}\n")).collect();
        std::thread::scope(|scope| {
            let lines = LineReader::new(text.as_bytes());
            let mut ahead =
                ReadAhead::start(scope, lines, budget(2, Some(5)), Limits::default()).unwrap();
            let mut seen = Vec::new();
            loop {
                match ahead.take().unwrap() {
                    Ahead::Batch(decoded, tag) => {
                        seen.push((tag.position, tag.lines));
                        assert_eq!(
                            decoded.payload(0),
                            format!("line {}", tag.position - tag.lines).as_bytes()
                        );
                        ahead.recycle(decoded.into_raw());
                    }
                    Ahead::Stopped => break,
                    other => panic!("expected the budget to stop the run, got {other:?}"),
                }
            }
            assert_eq!(seen, [(2, 2), (4, 2), (5, 1)]);
        });
    }

    #[test]
    fn a_read_error_is_handed_over_after_the_batches_before_it() {
        struct FailsAfter(&'static [u8]);
        impl std::io::Read for FailsAfter {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("disk gone"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        std::thread::scope(|scope| {
            let reader = std::io::BufReader::new(FailsAfter(b"a\nb\n"));
            let lines = LineReader::new(reader);
            let mut ahead =
                ReadAhead::start(scope, lines, budget(2, None), Limits::default()).unwrap();
            assert!(matches!(
                ahead.take().unwrap(),
                Ahead::Batch(_, Tag { lines: 2, .. })
            ));
            match ahead.take().unwrap() {
                Ahead::Failed(error) => assert!(error.to_string().contains("reading input")),
                other => panic!("expected the read error, got {other:?}"),
            }
        });
    }

    #[test]
    fn dropped_while_its_reader_waits_on_a_live_pipe_it_stops_at_the_next_line() {
        /// A pipe fed line by line that stays open: a batch of 100 never fills.
        struct Pipe(std::sync::mpsc::Receiver<Vec<u8>>, Vec<u8>);
        impl std::io::Read for Pipe {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.1.is_empty() {
                    match self.0.recv() {
                        Ok(line) => self.1 = line,
                        Err(_) => return Ok(0),
                    }
                }
                let n = self.1.len().min(buf.len());
                buf[..n].copy_from_slice(&self.1[..n]);
                self.1.drain(..n);
                Ok(n)
            }
        }
        let (feed, pipe) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let lines = LineReader::new(std::io::BufReader::new(Pipe(pipe, Vec::new())));
            let ahead =
                ReadAhead::start(scope, lines, budget(100, None), Limits::default()).unwrap();
            feed.send(b"one\n".to_vec()).unwrap();
            let dropping = scope.spawn(move || drop(ahead));
            // The pipe goes on yielding a line now and then, never enough for the batch.
            for _ in 0..90 {
                if dropping.is_finished() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                // Fails once the reading thread has ended and closed the pipe.
                let _ = feed.send(b"more\n".to_vec());
            }
            let stopped = dropping.is_finished();
            // Closing the pipe ends a thread that did not stop, so the scope can end.
            drop(feed);
            assert!(stopped, "the reading thread waited for a full batch");
        });
    }

    #[test]
    fn a_panic_on_the_reading_thread_after_this_side_has_gone_does_not_panic_the_run() {
        /// Signals once it is inside a read, then panics when told to.
        struct BreaksWhenTold {
            entered: std::sync::mpsc::Sender<()>,
            go: std::sync::mpsc::Receiver<()>,
        }
        impl std::io::Read for BreaksWhenTold {
            fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
                let _ = self.entered.send(());
                let _ = self.go.recv();
                panic!("the reader broke");
            }
        }
        let (entered_tx, entered) = channel();
        let (go, go_rx) = channel();
        let reader = BreaksWhenTold {
            entered: entered_tx,
            go: go_rx,
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|scope| {
                let lines = LineReader::new(std::io::BufReader::new(reader));
                let ahead =
                    ReadAhead::start(scope, lines, budget(8, None), Limits::default()).unwrap();
                entered.recv().unwrap();
                // This side fails and drops its end; then the reader breaks.
                let dropping = scope.spawn(move || drop(ahead));
                go.send(()).unwrap();
                dropping.join().unwrap();
            });
        }));
        assert!(
            run.is_ok(),
            "the scope re-raised the reading thread's panic"
        );
    }
}
