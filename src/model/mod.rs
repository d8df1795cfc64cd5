//! Wire contracts: agent-event v1 (input), alert v1 and command v1 (outputs).
//!
//! Rust types are the source of truth; `schemas/*.schema.json` are generated from them
//! (see [`crate::schema`]). Formats are additive-only within a `schema_version`.

mod alert;
mod command;
mod decode;
mod event;
mod scan;
pub mod time;
pub mod watermark;

pub use alert::{Alert, Anomaly, DetectorRef, Evidence, FleetScopeEvidence, Severity};
pub use command::{Command, CommandAction, CommandReason, CommandSignature};
pub use decode::{decode_event, event_time, DecodeError, Limits};
pub use event::{AgentEventV1, Event, EventTime, Outcome};
pub use watermark::{TimeBounds, Watermark};

/// The only schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
