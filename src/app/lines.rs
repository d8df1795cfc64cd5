//! Reading newline-delimited input in batches without per-line allocation.

use std::io::BufRead;

/// Reads lines into a reusable pool of buffers, a batch at a time. Lines are kept as
/// bytes, so non-UTF-8 input reaches the decoder (and its `not_utf8` code) instead of
/// failing the read.
pub struct LineBatcher<R> {
    reader: R,
    pool: Vec<Vec<u8>>,
    used: usize,
    line_number: u64,
    first_line: u64,
}

impl<R: BufRead> LineBatcher<R> {
    /// Wraps `reader`.
    pub fn new(reader: R) -> Self {
        LineBatcher {
            reader,
            pool: Vec::new(),
            used: 0,
            line_number: 0,
            first_line: 1,
        }
    }

    /// Skips `count` lines (already processed in an earlier run).
    pub fn skip(&mut self, count: u64) -> std::io::Result<u64> {
        let mut sink = Vec::new();
        let mut skipped = 0;
        while skipped < count {
            sink.clear();
            if self.reader.read_until(b'\n', &mut sink)? == 0 {
                break;
            }
            skipped += 1;
        }
        self.line_number += skipped;
        Ok(skipped)
    }

    /// Reads up to `max` lines. Returns false at end of input (with nothing read).
    pub fn fill(&mut self, max: usize) -> std::io::Result<bool> {
        self.used = 0;
        self.first_line = self.line_number + 1;
        while self.used < max {
            if self.pool.len() == self.used {
                self.pool.push(Vec::with_capacity(512));
            }
            let buffer = &mut self.pool[self.used];
            buffer.clear();
            if self.reader.read_until(b'\n', buffer)? == 0 {
                break;
            }
            while buffer.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buffer.pop();
            }
            self.used += 1;
            self.line_number += 1;
        }
        Ok(self.used > 0)
    }

    /// The lines of the current batch.
    pub fn lines(&self) -> &[Vec<u8>] {
        &self.pool[..self.used]
    }

    /// 1-based line number of the first line of the current batch.
    pub fn first_line(&self) -> u64 {
        self.first_line
    }

    /// Lines consumed so far (including skipped ones).
    pub fn position(&self) -> u64 {
        self.line_number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_lines_and_tracks_positions() {
        let input = b"a\r\nb\n\xff\nlast-without-newline".as_slice();
        let mut lines = LineBatcher::new(input);
        assert_eq!(lines.skip(1).unwrap(), 1);
        assert!(lines.fill(2).unwrap());
        assert_eq!(lines.lines(), [b"b".to_vec(), b"\xff".to_vec()]);
        assert_eq!(lines.first_line(), 2);
        assert!(lines.fill(2).unwrap());
        assert_eq!(lines.lines(), [b"last-without-newline".to_vec()]);
        assert_eq!(lines.position(), 4);
        assert!(!lines.fill(2).unwrap());
    }
}
