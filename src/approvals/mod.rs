//! Verified approvals: a high-risk action counts as approved only if its `approval_id`
//! names an approval a human actually granted, to this agent, for this action on this
//! system, valid at the event's time and not used up.
//!
//! Zero Trust's human-in-the-loop is only as strong as the proof that a human said yes.
//! Before this module, any non-empty `approval_id` passed, so an agent (or whoever
//! controls it) could invent one. Now:
//!
//! - approvals (contract agent-approval v1, [`AgentApprovalV1`]) come from a file and
//!   the compacted `agent-approvals` topic in `run`, or `replay --approvals FILE`
//!   ([`source`]); with trusted keys, only records signed by one of them take effect
//!   ([`crate::signing::record`]);
//! - the `high_risk_action` detector checks each event that needs approval against the
//!   [`ApprovalStore`] ([`verify::check`]) and names the broken rule
//!   ([`ApprovalRule`]);
//! - uses are counted per agent in its stored state ([`Ledger`]), so `max_uses` holds
//!   exactly once across crashes.
//!
//! ## Late approvals: the grace period, in event time
//!
//! An approval may arrive slightly after the action it covers (clock skew between the
//! approval system and the agent, lag on the topic). Two things absorb that, both
//! measured in *event time* so that `replay` decides exactly as `run` did:
//!
//! 1. An approval covers actions from `issued_at - grace` (not only from `issued_at`).
//! 2. An event whose `approval_id` is not known yet is *held* in the agent's
//!    [`Ledger`] instead of being judged `approval_unknown` at once. It is decided
//!    when its approval arrives (the engine releases held events at the start of each
//!    batch, right after approval changes are applied), or when the event-time
//!    watermark (the latest event time the engine has processed) reaches the event's
//!    time plus the grace, or just before the agent's own next event at or past that
//!    point, whichever comes first. Then it is checked as any other event: by the
//!    approval's own times, never by when the record happened to arrive.
//!
//! Held events are part of the agent's stored state, so a crash neither loses nor
//! repeats them. `replay` loads its approvals file before the first event, so only
//! unknown ids are held there; at the end of the input they are decided (no approval
//! can arrive any more). The same input and approvals give the same alerts in both
//! commands; the only difference a live system can show is an approval that reaches
//! the topic later than the grace, which `run` then reports as `approval_unknown`.
//!
//! Without any approval source the engine keeps the old behaviour (any `approval_id`
//! passes) and `run` warns at start: that setting trusts agents to tell the truth.

mod ledger;
mod record;
pub mod source;
mod store;
pub mod verify;

pub use ledger::{HeldEvent, Ledger, MAX_HELD, MAX_TRACKED};
pub use record::{AgentApprovalV1, Approval, RecordError};
pub use store::{ApprovalContext, ApprovalStore, ApprovalUpdate};
pub use verify::{check, ApprovalRule, Request};
