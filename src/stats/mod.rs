//! The statistics detectors share. Small on purpose: each detector keeps a few numbers
//! per agent (see the state budget in DESIGN §6) and turns them into a tail probability.

mod count_tail;
mod cusum;
mod decay;
mod ewma;
mod histogram;
mod peaks;
mod runs;
mod tail;

pub use count_tail::CountDistribution;
pub use cusum::Cusum;
pub use decay::decay_factor;
pub use ewma::{CompactStats, EwStats};
pub use histogram::LogHistogram;
pub use runs::{call_fingerprint, Runs};
pub use tail::{
    beta_binomial_sf, clustering_log_likelihood_ratio, negative_binomial_sf, p_from_score,
    score_from_p, student_t_sf, P_FLOOR,
};
