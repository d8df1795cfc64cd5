//! Metrics, the HTTP endpoint that serves them, and log set-up.

mod http;
mod labels;
mod logging;
mod metrics;

pub use http::MetricsServer;
pub use labels::{Absorbed, EventResult, Output, RegistrySource, ReloadResult};
pub use logging::{init_logging, LogFormat};
pub use metrics::Metrics;
