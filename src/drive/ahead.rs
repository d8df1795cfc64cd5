//! Decoding one batch ahead, on a thread of its own, while the engine works on the batch
//! before: the file and stdin path's use of the second core.
//!
//! Decoding (scanning the JSON, checking UTF-8, parsing the time) is about a quarter of
//! a replay's work per event and needs nothing from the engine, so it runs beside it:
//!
//! ```text
//!  engine's thread:  read lines ─► LineBatch ─┐                 ┌─► engine
//!  decoding thread:                           └─► DecodedLines ─┘
//! ```
//!
//! Lines are read on the engine's thread because the reader need not be `Send` (stdin's
//! lock is not); reading is a few percent of the work.
//!
//! A [`DecodedLines`] keeps the lines and the events decoded from them together, so it
//! crosses threads as one value (see [`super::decoded`]).

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use super::decoded::DecodedLines;
use super::lines::LineBatch;
use crate::error::{Error, Result};
use crate::model::Limits;

/// Where a batch handed over for decoding ends in its input, given back with it: the
/// source's position just past it, and how many lines it consumed (blank ones too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The input position after the batch.
    pub position: u64,
    /// Lines consumed by the batch.
    pub lines: u64,
}

/// A thread that decodes the batches handed to it, in order, and the tags of those not
/// yet taken back.
pub struct DecodeAhead {
    to_decode: Option<Sender<LineBatch>>,
    decoded: Receiver<DecodedLines>,
    in_flight: VecDeque<Tag>,
    worker: Option<JoinHandle<()>>,
}

impl DecodeAhead {
    /// Starts the decoding thread.
    pub fn start(limits: Limits) -> Result<Self> {
        let (to_decode, inbox) = channel::<LineBatch>();
        let (outbox, decoded) = channel();
        let worker = std::thread::Builder::new()
            .name("decode".into())
            .spawn(move || {
                for lines in inbox {
                    if outbox
                        .send(DecodedLines::decode_all(lines, limits))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting the decoding thread", e))?;
        Ok(DecodeAhead {
            to_decode: Some(to_decode),
            decoded,
            in_flight: VecDeque::new(),
            worker: Some(worker),
        })
    }

    /// Batches handed over and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Hands `lines` over to be decoded; `tag` comes back with it.
    pub fn submit(&mut self, lines: LineBatch, tag: Tag) -> Result<()> {
        let sent = self
            .to_decode
            .as_ref()
            .is_some_and(|to_decode| to_decode.send(lines).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        self.in_flight.push_back(tag);
        Ok(())
    }

    /// The oldest batch handed over, decoded, with its tag (waits for it); `None` when
    /// none is in flight.
    pub fn take(&mut self) -> Result<Option<(DecodedLines, Tag)>> {
        let Some(tag) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        match self.decoded.recv() {
            Ok(decoded) => Ok(Some((decoded, tag))),
            Err(_) => Err(self.stopped()),
        }
    }

    /// The thread is gone: a panic there goes on here, with its message, as it would
    /// have had decoding stayed on this thread.
    fn stopped(&mut self) -> Error {
        self.to_decode = None;
        if let Some(Err(panic)) = self.worker.take().map(JoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
        Error::Stopped("the decoding thread stopped".into())
    }
}

impl Drop for DecodeAhead {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; its last send may fail, which it
        // ignores.
        self.to_decode = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::decoded::tests::{lines, VALID};
    use crate::drive::Records;
    use crate::model::decode_event;

    #[test]
    fn a_batch_decoded_ahead_gives_what_decoding_in_place_gives() {
        let text = format!("{VALID}\nnot json\n");
        let limits = Limits::default();
        let mut ahead = DecodeAhead::start(limits).unwrap();
        let tag = Tag {
            position: 9,
            lines: 2,
        };
        ahead.submit(lines(&text), tag).unwrap();
        let (decoded, got_tag) = ahead.take().unwrap().unwrap();
        assert_eq!(got_tag, tag);
        let raw = lines(&text);
        for index in 0..raw.len() {
            let ahead = decoded.borrow_dependent().get(index, &limits);
            let in_place = decode_event(raw.payload(index), &limits);
            assert_eq!(ahead, Some(in_place.as_ref().map_err(Clone::clone)));
            assert_eq!(
                decoded
                    .decode(index, &limits)
                    .map(std::borrow::Cow::into_owned),
                in_place
            );
        }
        assert!(ahead.take().unwrap().is_none());
    }

    #[test]
    fn batches_come_back_in_the_order_they_were_handed_over() {
        let mut ahead = DecodeAhead::start(Limits::default()).unwrap();
        for n in 0..5 {
            let tag = Tag {
                position: n,
                lines: 1,
            };
            ahead.submit(lines(&format!("line {n}")), tag).unwrap();
        }
        assert_eq!(ahead.in_flight(), 5);
        for n in 0..5 {
            let (decoded, tag) = ahead.take().unwrap().unwrap();
            assert_eq!(tag.position, n);
            assert_eq!(decoded.payload(0), format!("line {n}").as_bytes());
        }
    }
}
