//! Metrics, the HTTP endpoint that serves them, and log set-up.

mod http;
mod labels;
mod logging;
mod metrics;

pub use http::MetricsServer;
pub use labels::{
    Absorbed, ApprovalSource, EventResult, Output, RecordSource, RegistrySource, ReloadResult,
    RECORD_REJECTION_CODES,
};
pub use logging::{init_logging, LogFormat};
pub use metrics::Metrics;
