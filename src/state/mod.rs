//! Per-agent state: the learned baseline, each detector's own numbers, risk and response
//! history; its versioned binary encoding; the write-back cache; and the RocksDB store.
//!
//! One [`AgentState`] per agent, written once per agent per flush (never once per event),
//! together with the source offsets the flush covers, in one RocksDB `WriteBatch`. That
//! single batch is what makes "every event counted exactly once" survive crashes.

mod agent;
mod cache;
pub mod changelog;
mod codec;
mod position;
mod store;
mod warm;

/// What was learned, defined below `state` (see [`crate::baseline`]) and stored here.
pub use crate::baseline::{
    Baseline, Calibration, HourOfWeek, PeerContext, PeerCounts, PeerIndex, Pending,
    PendingBaseline, PendingHour, Seen, SeenTable,
};
pub use agent::{
    AgentState, AspectVerdicts, DetectorSlot, EventSlots, FirstUse, Learned, RecentAlert,
    RecentAlerts, ResponseState, RiskState, MAX_RECENT_ALERTS,
};
pub use cache::{AgentCache, CacheStats, DEFAULT_CACHE_CAPACITY};
pub use codec::{decode_state, encode_state, FORMAT_VERSION};
pub use position::PositionKey;
pub use store::{OnEncoded, StateBatch, StateStore};
pub use warm::Warm;
