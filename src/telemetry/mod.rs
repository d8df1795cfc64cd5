//! Metrics, the HTTP endpoint that serves them, and log set-up.

mod http;
mod logging;
mod metrics;

pub use http::MetricsServer;
pub use logging::{init_logging, LogFormat};
pub use metrics::{Absorbed, Metrics, OUTPUTS, RECORD_REJECTIONS, RECORD_SOURCES};
