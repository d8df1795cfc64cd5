//! Event-time tumbling windows.

use serde::{Deserialize, Serialize};

/// A fixed-width window aligned to the epoch, advanced by event time only.
///
/// Aligning to the epoch (rather than to each agent's first event) makes windows
/// identical across replays, restarts and instances. A late event (older than the open
/// window) is counted in the open window rather than reopening a closed one: closed
/// windows have already been learned from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TumblingWindow {
    /// Start of the open window (event time, ms).
    pub start_ms: i64,
    /// Events in the open window.
    pub events: u32,
    /// Sum of the amounts added to the open window.
    pub sum: f64,
    /// True once an event in the window was judged anomalous; such a window is not
    /// learned from when it closes.
    pub flagged: bool,
}

impl TumblingWindow {
    /// Moves to the window containing `time_ms`. Returns the window that closed, if a
    /// non-empty one did.
    pub fn advance(&mut self, time_ms: i64, width_ms: i64) -> Option<TumblingWindow> {
        let start = time_ms.div_euclid(width_ms.max(1)) * width_ms.max(1);
        if start <= self.start_ms {
            return None;
        }
        let closed = std::mem::replace(
            self,
            TumblingWindow {
                start_ms: start,
                ..TumblingWindow::default()
            },
        );
        (closed.events > 0).then_some(closed)
    }

    /// Like [`TumblingWindow::advance`], but returns the closed window only if it may be
    /// learned from (it held no anomaly).
    pub fn advance_learnable(&mut self, time_ms: i64, width_ms: i64) -> Option<TumblingWindow> {
        self.advance(time_ms, width_ms)
            .filter(|closed| !closed.flagged)
    }

    /// Adds one event carrying `amount`.
    pub fn add(&mut self, amount: f64) {
        self.events = self.events.saturating_add(1);
        self.sum += amount;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_windows_on_event_time_boundaries() {
        let mut w = TumblingWindow::default();
        assert_eq!(w.advance(60_500, 60_000), None, "first window opens");
        w.add(2.0);
        assert_eq!(
            w.advance(30_000, 60_000),
            None,
            "late event stays in the open window"
        );
        w.add(1.0);
        let closed = w.advance(125_000, 60_000).unwrap();
        assert_eq!(
            (closed.start_ms, closed.events, closed.sum),
            (60_000, 2, 3.0)
        );
        assert_eq!(w.start_ms, 120_000);
        assert_eq!(
            w.advance(500_000, 60_000),
            None,
            "an empty window closes silently"
        );
    }
}
