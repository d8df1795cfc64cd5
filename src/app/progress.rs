//! A progress line for long runs: redrawn in place on a terminal, one line every few
//! seconds otherwise (so that logs and CI output stay readable).

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

/// Throttled progress output on stderr.
pub struct Progress {
    terminal: bool,
    every: Duration,
    last: Cell<Option<Instant>>,
}

impl Progress {
    /// Progress for a terminal (redrawn every 200 ms) or not (a line every 5 s).
    pub fn new(terminal: bool) -> Self {
        Progress {
            terminal,
            every: if terminal {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            },
            last: Cell::new(None),
        }
    }

    /// Like [`Progress::new`], but stays silent for the first `delay`: short runs print
    /// nothing.
    pub fn after(terminal: bool, delay: Duration) -> Self {
        let progress = Progress::new(terminal);
        progress.last.set(
            Instant::now()
                .checked_sub(progress.every)
                .map(|t| t + delay),
        );
        progress
    }

    /// Shows the line `render` makes, unless one was shown too recently.
    pub fn update(&self, render: impl FnOnce() -> String) {
        if self.last.get().is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        self.last.set(Some(Instant::now()));
        let line = render();
        let mut err = std::io::stderr();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }

    /// Erases a line drawn in place, before other output is printed.
    pub fn clear(&self) {
        if self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }

    /// Ends the progress display.
    pub fn finish(&self) {
        if self.terminal && self.last.get().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}
