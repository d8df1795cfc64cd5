//! Per-agent approval bookkeeping, stored with the agent's state: how often each
//! approval was used, and the events waiting for an approval that has not arrived.
//!
//! It lives in the agent's record in RocksDB (as the `high_risk_action` instance's
//! state), so it is written in the same `WriteBatch` as the consumed offsets: a use is
//! counted exactly once across crashes, like every other baseline count.

use std::borrow::Cow;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::ApprovalStore;
use crate::model::{Event, Outcome};

/// Most approvals whose uses are tracked per agent. Uses of approvals expired for longer
/// than [`KEEP_EXPIRED_MS`] are forgotten first; beyond this, the approval expiring
/// soonest is forgotten.
pub const MAX_TRACKED: usize = 64;
/// How long past its approval's expiry a use count is kept: as long as an event inside
/// the approval's window may still arrive (the time bounds' default `max_behind`). An
/// event dated within the window can arrive after a later one; had its approval's count
/// been forgotten at that later event's time, as it was, a single-use approval would
/// have covered the late action a second time.
pub const KEEP_EXPIRED_MS: i64 = crate::model::time::DAY_MS * 7;
/// Most events one agent may have waiting for approvals; an event beyond this is
/// decided at once, so a flood of invented ids cannot grow the agent's state.
pub const MAX_HELD: usize = 32;
/// Most text (ids, names and attributes) one agent's held events may carry together; an
/// event beyond it is decided at once. Held events are part of the agent's stored
/// record, which is also a changelog record: thirty-two events with a kilobyte of
/// attributes each made a record of one to two megabytes, over a broker's default
/// limit of one, and a record the broker refuses is retried at every commit, which
/// then never completes.
pub const MAX_HELD_BYTES: usize = 16 * 1024;

/// Uses of one approval by this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Use {
    approval_id: CompactString,
    uses: u32,
    expires_ms: i64,
}

/// An event held back until its approval arrives or the grace period ends, with what
/// its alert needs (an owned copy of the event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEvent {
    event_id: String,
    time_ms: i64,
    agent_id: String,
    action: String,
    system: String,
    owner: Option<String>,
    credential_id: Option<String>,
    session_id: Option<String>,
    resource: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
    outcome: Outcome,
    approval_id: String,
    attributes: Vec<(String, String)>,
}

fn owned(text: &Option<Cow<'_, str>>) -> Option<String> {
    text.as_deref().map(str::to_owned)
}

fn borrowed(text: &Option<String>) -> Option<Cow<'_, str>> {
    text.as_deref().map(Cow::Borrowed)
}

impl HeldEvent {
    fn of(event: &Event<'_>, approval_id: &str) -> Self {
        HeldEvent {
            event_id: event.event_id.to_string(),
            time_ms: event.time_ms,
            agent_id: event.agent_id.to_string(),
            action: event.action.to_string(),
            system: event.system.to_string(),
            owner: owned(&event.owner),
            credential_id: owned(&event.credential_id),
            session_id: owned(&event.session_id),
            resource: owned(&event.resource),
            bytes_in: event.bytes_in,
            bytes_out: event.bytes_out,
            outcome: event.outcome,
            approval_id: approval_id.to_owned(),
            attributes: event
                .attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The bytes of text it carries (what its stored size grows with).
    fn text_bytes(&self) -> usize {
        let optional = [
            &self.owner,
            &self.credential_id,
            &self.session_id,
            &self.resource,
        ];
        self.event_id.len()
            + self.agent_id.len()
            + self.action.len()
            + self.system.len()
            + self.approval_id.len()
            + optional
                .iter()
                .map(|o| o.as_ref().map_or(0, String::len))
                .sum::<usize>()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// The event, as the engine decides it.
    pub fn event(&self) -> Event<'_> {
        Event {
            event_id: Cow::Borrowed(&self.event_id),
            time_ms: self.time_ms,
            agent_id: Cow::Borrowed(&self.agent_id),
            action: Cow::Borrowed(&self.action),
            system: Cow::Borrowed(&self.system),
            owner: borrowed(&self.owner),
            credential_id: borrowed(&self.credential_id),
            session_id: borrowed(&self.session_id),
            resource: borrowed(&self.resource),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            outcome: self.outcome,
            approval_id: Some(Cow::Borrowed(&self.approval_id)),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
        }
    }

    /// Event time (ms).
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }
}

/// One agent's approval uses and held events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    uses: Vec<Use>,
    held: Vec<HeldEvent>,
}

impl Ledger {
    /// How many actions this agent has already covered with `approval_id`.
    pub fn uses(&self, approval_id: &str) -> u32 {
        self.uses
            .iter()
            .find(|u| u.approval_id == approval_id)
            .map_or(0, |u| u.uses)
    }

    /// Counts one use of `approval_id` (which expires at `expires_ms`) at `now_ms`.
    pub fn record_use(&mut self, approval_id: &str, expires_ms: i64, now_ms: i64) {
        if let Some(entry) = self.uses.iter_mut().find(|u| u.approval_id == approval_id) {
            entry.uses = entry.uses.saturating_add(1);
            return;
        }
        self.uses
            .retain(|u| u.expires_ms.saturating_add(KEEP_EXPIRED_MS) > now_ms);
        if self.uses.len() >= MAX_TRACKED {
            if let Some(soonest) = (0..self.uses.len()).min_by_key(|&i| self.uses[i].expires_ms) {
                self.uses.swap_remove(soonest);
            }
        }
        self.uses.push(Use {
            approval_id: CompactString::new(approval_id),
            uses: 1,
            expires_ms,
        });
    }

    /// Holds `event` to wait for approval `approval_id`. False when the agent already
    /// holds [`MAX_HELD`] events, or their text would pass [`MAX_HELD_BYTES`] (the
    /// caller then decides it at once).
    pub fn hold(&mut self, event: &Event<'_>, approval_id: &str) -> bool {
        if self.held.len() >= MAX_HELD {
            return false;
        }
        let held = HeldEvent::of(event, approval_id);
        let bytes: usize = self.held.iter().map(HeldEvent::text_bytes).sum();
        if bytes + held.text_bytes() > MAX_HELD_BYTES {
            return false;
        }
        self.held.push(held);
        true
    }

    /// True while events wait.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes out, in event order, the held events that can be decided now: those whose
    /// approval has arrived, and those whose wait ended (`time + grace <= now_ms`).
    /// `now_ms = None` takes every one (the input has ended: nothing more can arrive).
    pub fn take_due(&mut self, now_ms: Option<i64>, store: &ApprovalStore) -> Vec<HeldEvent> {
        let grace = store.grace_ms();
        let due = |held: &HeldEvent| {
            store.get(&held.approval_id).is_some()
                || now_ms.is_none_or(|now| held.time_ms.saturating_add(grace) <= now)
        };
        if !self.held.iter().any(due) {
            return Vec::new();
        }
        let (mut taken, kept): (Vec<HeldEvent>, Vec<HeldEvent>) =
            std::mem::take(&mut self.held).into_iter().partition(due);
        self.held = kept;
        taken.sort_by_key(|h| h.time_ms);
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decode_event, Limits};

    #[test]
    fn uses_are_counted_and_expired_ones_forgotten_first() {
        let mut ledger = Ledger::default();
        ledger.record_use("a", 1_000, 0);
        ledger.record_use("a", 1_000, 10);
        assert_eq!(ledger.uses("a"), 2);
        let later = 1_000 + KEEP_EXPIRED_MS;
        ledger.record_use("b", later + 10_000, 1_001);
        assert_eq!(
            ledger.uses("a"),
            2,
            "expired at 1000, still counted just after: a late event may use it"
        );
        for i in 0..MAX_TRACKED as i64 - 1 {
            ledger.record_use(&format!("x{i}"), later + 5_000 + i, later + 1);
        }
        assert_eq!(ledger.uses("a"), 0, "forgotten a week past its expiry");
        assert_eq!(ledger.uses("x0"), 1);
        ledger.record_use("y", later + 9_000, later + 2);
        assert_eq!(ledger.uses("x0"), 0, "the soonest to expire gives way");
        assert_eq!(ledger.uses("y"), 1);
    }

    #[test]
    fn held_events_stay_within_their_byte_budget() {
        let note = "x".repeat(1_000);
        let line = format!(
            r#"{{"event_id":"e1","time":1000,"agent_id":"a","action":"delete","system":"s","approval_id":"apr","attributes":{{"note":"{note}"}}}}"#
        );
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        let mut ledger = Ledger::default();
        let mut held = 0;
        while ledger.hold(&event, "apr") {
            held += 1;
        }
        assert!(held < MAX_HELD, "{held} events of a kilobyte held");
        assert!(held >= MAX_HELD_BYTES / 1_100, "{held} held");
        let stored = postcard::to_allocvec(&ledger).unwrap();
        assert!(
            stored.len() <= MAX_HELD_BYTES + 1_024,
            "{} bytes",
            stored.len()
        );
        assert!(
            ledger.hold(&decode_event(br#"{"event_id":"e2","time":1000,"agent_id":"a","action":"delete","system":"s","approval_id":"apr"}"#, &Limits::default()).unwrap(), "apr"),
            "a small event still fits"
        );
    }

    #[test]
    fn held_events_round_trip_and_leave_when_due() {
        let line = br#"{"event_id":"e1","time":1000,"agent_id":"a","action":"delete","system":"s","approval_id":"apr","attributes":{"k":"v"}}"#;
        let event = decode_event(line, &Limits::default()).unwrap();
        let mut ledger = Ledger::default();
        assert!(ledger.hold(&event, "apr"));
        assert_eq!(ledger.held[0].event(), event);
        let store = ApprovalStore::new(500);
        assert!(ledger.take_due(Some(1_499), &store).is_empty());
        assert_eq!(ledger.take_due(Some(1_500), &store).len(), 1);
        assert!(!ledger.is_holding());
        for _ in 0..MAX_HELD {
            assert!(ledger.hold(&event, "apr"));
        }
        assert!(!ledger.hold(&event, "apr"), "bounded");
        assert_eq!(ledger.take_due(None, &store).len(), MAX_HELD);
    }
}
