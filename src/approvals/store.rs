//! The approvals in force, as the engine checks events against them.

use std::collections::HashMap;

use super::Approval;

/// A change to the approvals in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalUpdate {
    /// A new or replaced approval.
    Upsert(Box<Approval>),
    /// The approval with this id is withdrawn (a tombstone on the topic, or a record
    /// gone from the file).
    Withdraw(String),
}

/// Every known approval by id, plus the grace period events wait for one.
///
/// Its presence in the engine is what turns verification on: without a store,
/// `high_risk_action` accepts any `approval_id` (the behaviour before approvals
/// existed), which is why `run` warns at start when no approval source is configured.
#[derive(Debug, Clone, Default)]
pub struct ApprovalStore {
    approvals: HashMap<String, Approval>,
    grace_ms: i64,
}

impl ApprovalStore {
    /// An empty store whose approvals are honoured up to `grace_ms` late (see the
    /// module documentation of [`crate::approvals`]).
    pub fn new(grace_ms: i64) -> Self {
        ApprovalStore {
            approvals: HashMap::new(),
            grace_ms: grace_ms.max(0),
        }
    }

    /// Applies a change.
    pub fn apply(&mut self, update: ApprovalUpdate) {
        match update {
            ApprovalUpdate::Upsert(approval) => {
                self.approvals.insert(approval.id().to_owned(), *approval);
            }
            ApprovalUpdate::Withdraw(id) => {
                self.approvals.remove(&id);
            }
        }
    }

    /// The approval with this id.
    pub fn get(&self, approval_id: &str) -> Option<&Approval> {
        self.approvals.get(approval_id)
    }

    /// How long an event waits for an approval that has not arrived yet, and how long
    /// before its `issued_at` an approval already covers an action.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Approvals known.
    pub fn len(&self) -> usize {
        self.approvals.len()
    }

    /// True if none is known.
    pub fn is_empty(&self) -> bool {
        self.approvals.is_empty()
    }

    /// Ids of every known approval (for working out withdrawals when a file changes).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.approvals.keys().map(String::as_str)
    }
}

/// What a detector sees of the approvals for one event.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalContext<'a> {
    /// The approvals in force.
    pub store: &'a ApprovalStore,
    /// True when an event whose approval is unknown may be held to wait for it; false
    /// when the event is being released from that wait (its time is up, or the
    /// approval arrived), so it is decided now.
    pub may_hold: bool,
}
