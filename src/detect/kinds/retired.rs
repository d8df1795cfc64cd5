//! State shapes that older builds stored, kept only so their records still decode.

use serde::{Deserialize, Serialize};

use super::system_sizes::{SystemSizes, SystemSizesV11};
use super::{Shadow, SlidingCount, TumblingWindow};
use crate::stats::{CompactStats, CountDistribution, Cusum, EwStats, LogHistogram, Runs};

/// `new_system` before state format 3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewSystemV2 {
    /// Decayed novel events.
    pub novel: f64,
    /// Decayed events.
    pub exposure: f64,
    /// Time the counts are decayed to.
    pub at_ms: i64,
}

/// `volume` before state format 3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VolumeV2 {
    /// Per-transfer log sizes.
    pub transfers: EwStats,
    /// Per-window log totals.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
}

/// `rate` before state format 3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateV2 {
    /// Calls per active window.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
}

/// `denied_burst` before state format 5 (before it learned how failures cluster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeniedBurstV4 {
    /// Decayed calls in learned windows.
    pub calls: f64,
    /// Decayed failures in learned windows.
    pub failures: f64,
    /// The open window.
    pub window: TumblingWindow,
}

/// `rate` before state format 6 (before its count distributions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateV5 {
    /// The sliding counts, one per window.
    pub counts: [SlidingCount; 3],
    /// Mean and variance of each window's count.
    pub stats: [EwStats; 3],
    /// The counts the latest event saw.
    pub latest: [u32; 3],
    /// Flagged paces since the episode began.
    pub pending: Shadow,
}

/// `volume` before state format 7 (before sizes were judged per action and system).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeV6 {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: EwStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers since the episode began.
    pub pending: Shadow,
}

/// `rate` before state format 8 (before it held an unusual episode back from its
/// distributions until the episode ends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateV7 {
    /// The sliding counts, one per window.
    pub counts: [SlidingCount; 3],
    /// Mean and variance of each window's count.
    pub stats: [EwStats; 3],
    /// Each window's count distribution.
    pub tails: [CountDistribution; 3],
    /// When each distribution last learned an unusual count.
    pub unusual_ms: [i64; 3],
    /// The counts the latest event saw.
    pub latest: [u32; 3],
    /// Flagged paces since the episode began.
    pub pending: Shadow,
}

/// `denied_burst` before state format 9 (it measured clustering by a moment estimate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeniedBurstV8 {
    /// Decayed calls in learned windows.
    pub calls: f32,
    /// Decayed failures in learned windows.
    pub failures: f32,
    /// Decayed Pearson excess of failures per window.
    pub clustering: f32,
    /// Decayed calls beyond the first of each window the excess was measured on.
    pub clustering_calls: f32,
    /// The open window.
    pub window: TumblingWindow,
    /// The open window held an escalated finding.
    pub escalated: bool,
}

/// `denied_burst` of state formats 9 to 12 (before failures of routine calls were
/// counted apart from the open window's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeniedBurstV12 {
    /// Decayed calls in learned windows.
    pub calls: f32,
    /// Decayed failures in learned windows.
    pub failures: f32,
    /// Decayed log likelihood ratio of the clustered model over the independent one.
    pub evidence: f32,
    /// The open window.
    pub window: TumblingWindow,
    /// The open window held an escalated finding.
    pub escalated: bool,
}

/// `rate` of state formats 8 and 9 (before it counted the calls of one kind).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateV9 {
    /// The sliding counts, one per window.
    pub counts: [SlidingCount; 3],
    /// Mean and variance of each window's count.
    pub stats: [EwStats; 3],
    /// Each window's count distribution.
    pub tails: [CountDistribution; 3],
    /// The counts the latest event saw.
    pub latest: [u32; 3],
    /// Flagged paces since the episode began.
    pub pending: Shadow,
    /// Each window's unusual counts held back until their episode ends.
    pub held: Option<Box<RateHeldV9>>,
    /// The run of identical calls in progress and the completed ones.
    pub runs: Runs,
}

/// The held episode of [`RateV9`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateHeldV9 {
    /// When each window's episode began (0: none).
    pub since_ms: [i64; 3],
    /// Each window's unusual counts.
    pub counts: [CountDistribution; 3],
}

/// A format 7 state is a format 9 one with nothing held and no runs yet.
impl From<RateV7> for RateV9 {
    fn from(old: RateV7) -> Self {
        RateV9 {
            counts: old.counts,
            stats: old.stats,
            tails: old.tails,
            latest: old.latest,
            pending: old.pending,
            held: None,
            runs: Runs::default(),
        }
    }
}

/// `volume` of state formats 7 to 10 (before it counted every transfer of a pending
/// episode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeV10 {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: EwStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers since the episode began.
    #[serde(with = "super::shadow::stored_if_live")]
    pub pending: Shadow,
    /// Typical size per system.
    pub systems: SystemSizesV11,
    /// The largest transfer of the open window (bytes).
    pub window_peak: f32,
}

/// `volume` of state format 11 (before each system's sizes kept their spread).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeV11 {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: EwStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers since the episode began.
    #[serde(with = "super::shadow::stored_if_live")]
    pub pending: Shadow,
    /// Typical size per system.
    pub systems: SystemSizesV11,
    /// The largest transfer of the open window (bytes).
    pub window_peak: f32,
    /// Every transfer's residual since the pending episode began.
    pub episode: Option<CompactStats>,
}

/// A format 10 state is a format 11 one with no episode counted.
impl From<VolumeV10> for VolumeV11 {
    fn from(old: VolumeV10) -> Self {
        VolumeV11 {
            transfers: old.transfers,
            windows: old.windows,
            window: old.window,
            sizes: old.sizes,
            cusum: old.cusum,
            pending: old.pending,
            systems: old.systems,
            window_peak: old.window_peak,
            episode: None,
        }
    }
}

/// `volume` of state formats 12 and 13 (before each system kept its run of transfers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeV13 {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: CompactStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: CompactStats,
    /// The open window.
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers since the episode began.
    #[serde(with = "super::shadow::stored_if_live")]
    pub pending: Shadow,
    /// Typical size and spread per system.
    pub systems: SystemSizes,
    /// The largest transfer of the open window (bytes).
    pub window_peak: f32,
    /// Every transfer's residual since the pending episode began.
    pub episode: Option<CompactStats>,
}

/// A format 6 state is a format 13 one whose sizes are judged agent-wide (no system
/// has sizes of its own yet) with no episode counted.
impl From<VolumeV6> for VolumeV13 {
    fn from(old: VolumeV6) -> Self {
        VolumeV13 {
            transfers: old.transfers.into(),
            windows: old.windows.into(),
            window: old.window,
            sizes: old.sizes,
            cusum: old.cusum,
            pending: old.pending,
            systems: SystemSizes::default(),
            window_peak: 0.0,
            episode: None,
        }
    }
}

/// A format 11 state is a format 13 one whose systems start with the agent's own
/// spread (see [`SystemSizes::from_v11`]).
impl From<VolumeV11> for VolumeV13 {
    fn from(old: VolumeV11) -> Self {
        VolumeV13 {
            transfers: old.transfers.into(),
            windows: old.windows.into(),
            window: old.window,
            sizes: old.sizes,
            cusum: old.cusum,
            pending: old.pending,
            systems: SystemSizes::from_v11(&old.systems, old.transfers.var),
            window_peak: old.window_peak,
            episode: old.episode,
        }
    }
}
