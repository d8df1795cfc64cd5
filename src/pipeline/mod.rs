//! The engine: per event, score with every matching detector, decide, then learn.
//!
//! Order matters and is fixed: (1) count the event in the agent's baseline; (2) each
//! matching detector scores it against the baseline *as it was* (a kind whose score
//! only reads is skipped while it warms up, when nothing it finds but a broken rule can
//! count); (3) a finding at or
//! below the instance's budget-derived p-value is an anomaly, unless the agent's pending
//! model explains it (new behaviour being learned) or many agents show it at once (a
//! fleet event, see [`fleet`]); the decide step turns the rest into alerts and
//! commands; (4) each detector learns with the verdict: normal observations into its
//! baseline, flagged ones into its pending model (promoted once they persist),
//! escalated ones nowhere; (5) the shared baseline learns the same way, aspect by
//! aspect. Steps 4–5 keep a slow attacker from teaching the baseline without making
//! ordinary change alert forever.

mod credentials;
pub mod decide;
mod engine;
pub mod fleet;
mod ids;
mod roster;
mod writer;

pub use credentials::{CredentialLedger, CredentialUse};
pub use decide::Policy;
pub use engine::{Engine, EngineOptions, Outputs, ScoreRow};
pub use fleet::{
    FleetContext, FleetParams, FleetRecord, FleetSighting, FleetVerdict, LateAnnouncement,
};
pub use ids::{alert_id, command_id};
pub use roster::{AgentJoined, FleetRoster};
