//! JSON lines as a [`Source`]: a file, stdin, or anything else that reads like one (a
//! simulation renders its events as lines). One lane; the position is the number of
//! lines consumed, stored with the state together with the lane's watermark, so a second
//! run on the same state resumes after the last committed line and judges event times
//! exactly as an uninterrupted run would.

use std::io::BufRead;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Scope;

use super::ahead::{Ahead, Budget, ReadAhead, Tag};
use super::decoded::DecodedLines;
use super::{At, Driver, Lanes, Pull, Records, Sink, Source};
use crate::error::{Error, Result};
use crate::model::{Limits, Watermark};
use crate::state::PositionKey;

/// Lines read together, in one reused buffer. Blank lines are left out (they are not
/// records); each line keeps its 1-based number.
#[derive(Debug, Default)]
pub struct LineBatch {
    data: Vec<u8>,
    lines: Vec<(u64, Range<usize>)>,
}

impl LineBatch {
    /// Empties the batch, keeping its buffer.
    pub fn clear(&mut self) {
        self.data.clear();
        self.lines.clear();
    }
}

impl Records for LineBatch {
    fn len(&self) -> usize {
        self.lines.len()
    }

    fn at(&self, index: usize) -> At {
        At {
            lane: 0,
            offset: self.lines[index].0,
        }
    }

    fn payload(&self, index: usize) -> &[u8] {
        &self.data[self.lines[index].1.clone()]
    }
}

/// Reads newline-delimited records into [`LineBatch`]es, counting lines. Lines are
/// kept as bytes, so non-UTF-8 input reaches the decoder (and its `not_utf8` code)
/// instead of failing the read.
pub struct LineReader<R> {
    reader: R,
    /// Lines consumed, including skipped ones.
    position: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps `reader`.
    pub fn new(reader: R) -> Self {
        LineReader {
            reader,
            position: 0,
        }
    }

    /// Lines consumed so far (read or skipped).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Skips `count` lines (already processed in an earlier run).
    pub fn skip(&mut self, count: u64) -> std::io::Result<u64> {
        let mut sink = Vec::new();
        let mut skipped = 0;
        while skipped < count {
            sink.clear();
            if read_line(&mut self.reader, &mut sink)? == 0 {
                break;
            }
            skipped += 1;
        }
        self.position += skipped;
        Ok(skipped)
    }

    /// Reads up to `max` lines into `batch` (appending); returns how many were read
    /// (0: end of input).
    pub fn fill(&mut self, batch: &mut LineBatch, max: u64) -> std::io::Result<u64> {
        self.fill_unless(batch, max, &AtomicBool::new(false))
    }

    /// [`LineReader::fill`], giving up after the line in progress once `stop` is set:
    /// a reader waiting on a live pipe for a batch nobody will take stops at its next
    /// line instead of at the batch's end.
    pub fn fill_unless(
        &mut self,
        batch: &mut LineBatch,
        max: u64,
        stop: &AtomicBool,
    ) -> std::io::Result<u64> {
        let mut read = 0;
        while read < max && !stop.load(Ordering::Relaxed) {
            let start = batch.data.len();
            if read_line(&mut self.reader, &mut batch.data)? == 0 {
                break;
            }
            read += 1;
            self.position += 1;
            let mut end = batch.data.len();
            while end > start && matches!(batch.data[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            if batch.data[start..end].iter().all(u8::is_ascii_whitespace) {
                batch.data.truncate(start);
            } else {
                batch.data.truncate(end);
                batch.lines.push((self.position, start..end));
            }
        }
        Ok(read)
    }
}

/// Appends the next line of `reader` (with its newline, if it has one) to `out` and
/// returns its length (0: end of input), as [`BufRead::read_until`] does. Every event
/// is found this way: `read_until`'s word-at-a-time search took about 300 instructions
/// per event, the `memchr` crate's vectorized one a fraction of that.
fn read_line<R: BufRead>(reader: &mut R, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(total);
        }
        let (taken, complete) = match memchr::memchr(b'\n', available) {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        out.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        total += taken;
        if complete {
            return Ok(total);
        }
    }
}

/// Newline-delimited events from a reader, `batch_size` lines at a time, read and
/// decoded ahead on a thread of their own ([`ReadAhead`], started in `scope`) while the
/// engine works on the batch before. A batch is handed over once it is full or the input
/// ends, so on a live pipe output follows input by up to one batch.
pub struct LineSource<'scope, 'env, R> {
    scope: &'scope Scope<'scope, 'env>,
    /// The reader until the reading thread takes it (resuming skips lines first).
    lines: Option<LineReader<R>>,
    key: PositionKey,
    budget: Budget,
    ahead: Option<ReadAhead<'scope>>,
    /// Why reading stopped, once the driver has been told.
    finished: Option<Finished>,
    /// Lines read in this run, in batches handed to the driver.
    read: u64,
    /// The position just past the last batch handed to the driver: what is stored, as
    /// the batches read ahead are not processed yet.
    released: u64,
    resumed_from: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finished {
    Ended,
    Stopped,
}

impl<'scope, 'env, R: BufRead + Send + 'scope> LineSource<'scope, 'env, R> {
    /// Lines from `reader`, whose position is stored under `key`, read on a thread of
    /// `scope`.
    pub fn new(scope: &'scope Scope<'scope, 'env>, reader: R, key: PositionKey) -> Self {
        LineSource {
            scope,
            lines: Some(LineReader::new(reader)),
            key,
            budget: Budget {
                batch_size: 1_024,
                max_lines: None,
            },
            ahead: None,
            finished: None,
            read: 0,
            released: 0,
            resumed_from: 0,
        }
    }

    /// Reads `lines` lines per batch.
    pub fn batch_size(mut self, lines: usize) -> Self {
        self.budget.batch_size = lines.max(1) as u64;
        self
    }

    /// Stops after `lines` lines in this run (the rest is left for a later run).
    pub fn max_lines(mut self, lines: Option<u64>) -> Self {
        self.budget.max_lines = lines;
        self
    }

    /// Lines read in this run (not counting those skipped on resume).
    pub fn lines_read(&self) -> u64 {
        self.read
    }

    /// Lines skipped because an earlier run on the same state processed them.
    pub fn resumed_from(&self) -> u64 {
        self.resumed_from
    }

    /// The reading thread, started on first use with the reader.
    fn reading(&mut self, limits: Limits) -> Result<&mut ReadAhead<'scope>> {
        let ahead = match (self.ahead.take(), self.lines.take()) {
            (Some(ahead), _) => ahead,
            (None, Some(lines)) => ReadAhead::start(self.scope, lines, self.budget, limits)?,
            (None, None) => return Err(Error::Stopped("the reading thread stopped".into())),
        };
        Ok(self.ahead.insert(ahead))
    }
}

impl<'scope, 'env, R: BufRead + Send + 'scope> Source for LineSource<'scope, 'env, R> {
    type Batch = DecodedLines;

    fn open<K>(&mut self, driver: &mut Driver<'_, K>) -> Result<()> {
        let resume_at = driver.engine().offset(&self.key)?.unwrap_or(0);
        let watermark = driver
            .engine()
            .offset(&self.key.watermark())?
            .and_then(|ms| i64::try_from(ms).ok());
        driver.lanes_mut().insert(0, Watermark::at(watermark));
        let Some(lines) = self.lines.as_mut() else {
            return Ok(());
        };
        if resume_at > 0 {
            let skipped = lines
                .skip(resume_at)
                .map_err(|e| Error::io("skipping already processed input", e))?;
            self.resumed_from = skipped;
            tracing::info!(source = %self.key, lines = skipped, "resuming after committed position");
        }
        self.released = lines.position();
        Ok(())
    }

    fn pull<K: Sink<DecodedLines>>(
        &mut self,
        driver: &mut Driver<'_, K>,
    ) -> Result<Pull<DecodedLines>> {
        match self.finished {
            Some(Finished::Ended) => return Ok(Pull::Ended),
            Some(Finished::Stopped) => return Ok(Pull::Stopped),
            None => {}
        }
        let limits = *driver.limits();
        match self.reading(limits)?.take()? {
            Ahead::Batch(batch, Tag { position, lines }) => {
                self.released = position;
                self.read += lines;
                Ok(Pull::Batch(batch))
            }
            Ahead::Ended => {
                self.finished = Some(Finished::Ended);
                Ok(Pull::Ended)
            }
            Ahead::Stopped => {
                self.finished = Some(Finished::Stopped);
                Ok(Pull::Stopped)
            }
            // An error is returned once, and the reader is not read again: the lines of
            // the batch it failed in are lost to this run, and nothing after them is
            // committed.
            Ahead::Failed(error) => {
                self.finished = Some(Finished::Stopped);
                Err(error)
            }
        }
    }

    fn recycle(&mut self, batch: DecodedLines) {
        if let Some(ahead) = &self.ahead {
            ahead.recycle(batch.into_raw());
        }
    }

    fn positions(&self, lanes: &Lanes, out: &mut Vec<(PositionKey, u64)>) {
        out.push((self.key.clone(), self.released));
        let watermark = lanes.get(&0).and_then(Watermark::get);
        if let Some(ms) = watermark.and_then(|ms| u64::try_from(ms).ok()) {
            out.push((self.key.watermark(), ms));
        }
    }
}

/// Events already in memory, one batch per call of [`Memory::push`]: for callers that
/// feed the engine step by step (the demo's approval loop). Nothing is stored as a
/// position, and the input never ends (nothing is decided early).
#[derive(Debug, Default)]
pub struct Memory {
    next: Option<LineBatch>,
    line: u64,
}

impl Memory {
    /// Queues one event (its JSON) as the next batch.
    pub fn push(&mut self, json: &[u8]) {
        let batch = self.next.get_or_insert_with(LineBatch::default);
        let start = batch.data.len();
        batch.data.extend_from_slice(json);
        self.line += 1;
        batch.lines.push((self.line, start..batch.data.len()));
    }
}

impl Source for Memory {
    type Batch = LineBatch;

    fn pull<K: Sink<LineBatch>>(&mut self, _driver: &mut Driver<'_, K>) -> Result<Pull<LineBatch>> {
        Ok(self.next.take().map_or(Pull::Stopped, Pull::Batch))
    }

    fn positions(&self, _lanes: &Lanes, _out: &mut Vec<(PositionKey, u64)>) {}

    fn close<K: Sink<LineBatch>>(&mut self, _driver: &mut Driver<'_, K>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn read_line_agrees_with_read_until_across_buffer_boundaries(
            bytes in prop::collection::vec(prop::sample::select(vec![b'\n', b'\r', b'a', b'{', 0xff]), 0..200),
            capacity in 1usize..9,
        ) {
            let mut ours = std::io::BufReader::with_capacity(capacity, bytes.as_slice());
            let mut std_lines = bytes.as_slice();
            loop {
                let (mut line, mut expected) = (Vec::new(), Vec::new());
                let read = read_line(&mut ours, &mut line).unwrap();
                let read_expected = std_lines.read_until(b'\n', &mut expected).unwrap();
                prop_assert_eq!((read, &line), (read_expected, &expected));
                if read == 0 {
                    break;
                }
            }
        }
    }

    #[test]
    fn lines_keep_their_numbers_and_blank_lines_are_not_records() {
        let input = b"a\r\n\n  \nb\n\xff\nlast-without-newline".as_slice();
        let mut lines = LineReader::new(input);
        let mut batch = LineBatch::default();
        assert_eq!(lines.fill(&mut batch, 4).unwrap(), 4);
        assert_eq!(batch.len(), 2);
        assert_eq!((batch.at(0).offset, batch.payload(0)), (1, &b"a"[..]));
        assert_eq!((batch.at(1).offset, batch.payload(1)), (4, &b"b"[..]));
        batch.clear();
        assert_eq!(lines.fill(&mut batch, 4).unwrap(), 2);
        assert_eq!(batch.payload(0), b"\xff");
        assert_eq!(batch.payload(1), b"last-without-newline");
        assert_eq!(lines.position(), 6);
        batch.clear();
        assert_eq!(lines.fill(&mut batch, 4).unwrap(), 0);
        let mut resumed = LineReader::new(input);
        assert_eq!(resumed.skip(4).unwrap(), 4);
        assert!(resumed.fill(&mut batch, 1).unwrap() == 1 && batch.payload(0) == b"\xff");
    }
}
