//! The engine: per event, score with every matching detector, decide, then learn.
//!
//! Order matters and is fixed: (1) count the event in the agent's baseline; (2) each
//! matching detector scores it against the baseline *as it was*; (3) the decide step
//! turns findings above threshold into alerts and commands; (4) each detector learns,
//! unless it found the event anomalous; (5) the shared baseline learns, unless any
//! detector did. Steps 4–5 are what keep a slow attacker from teaching the baseline.

mod credentials;
pub mod decide;
mod engine;
mod ids;
mod writer;

pub use credentials::CredentialLedger;
pub use decide::Policy;
pub use engine::{Engine, EngineOptions, Outputs, ScoreRow};
pub use ids::{alert_id, command_id};
