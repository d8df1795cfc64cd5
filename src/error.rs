//! The library's error type. Each variant has a stable [`Error::code`] so that operators can
//! alert on, count and search for failures without parsing messages.

use std::path::PathBuf;

/// Shorthand used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in agentwatch outside of decoding a single event
/// (which has its own [`crate::model::DecodeError`], so that bad input is counted and
/// never stops the engine).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The detector directory holds one or more invalid files; every problem is listed.
    #[error("{} detector configuration problem(s):\n{}", .0.len(), .0.join("\n"))]
    DetectorConfig(Vec<String>),
    /// The agent registry file holds one or more invalid records; every problem is listed.
    #[error("{} registry problem(s):\n{}", .0.len(), .0.join("\n"))]
    Registry(Vec<String>),
    /// An approvals file holds refused records (reported by `validate`; `run` and
    /// `replay` leave such records out and go on); every problem is listed.
    #[error("{} approval record problem(s):\n{}", .0.len(), .0.join("\n"))]
    Approvals(Vec<String>),
    /// A signing or verification key is missing, unreadable or malformed.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// RocksDB refused an operation.
    #[error("state store at {path}: {source}")]
    Store {
        /// Where the store lives.
        path: PathBuf,
        /// What RocksDB said.
        source: rocksdb::Error,
    },
    /// A stored agent state could not be decoded (corruption or an unknown format version).
    #[error("stored state for agent {agent_id:?} is unreadable: {reason}")]
    CorruptState {
        /// The agent whose record is unreadable.
        agent_id: String,
        /// Why decoding failed.
        reason: String,
    },
    /// A file or stream could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A labels file or other JSON input of the tools is malformed.
    #[error("{context}: {detail}")]
    InvalidInput {
        /// Which input.
        context: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Committed JSON Schemas differ from the ones the Rust types generate.
    #[error("schemas out of date: {} (run `agentwatch schemas --write`)", .0.join(", "))]
    SchemaDrift(Vec<String>),
    /// A command was given flags that cannot work together or values out of range;
    /// printed as it is, like clap's own usage errors.
    #[error("{0}")]
    Usage(String),
    /// The service config file is invalid; every problem is listed with its line.
    #[error("{} configuration problem(s):\n{}", .0.len(), .0.join("\n"))]
    Config(Vec<String>),
    /// A Kafka client operation failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// What the Kafka client said (kept opaque so that only `kafka` depends on the
        /// client library).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Topics the service needs do not exist and `create_topics` is off.
    #[error("missing Kafka topic(s): {} (create them, or set create_topics = true in [kafka])", .0.join(", "))]
    MissingTopics(Vec<String>),
    /// Outputs could not be delivered before the deadline; state was not committed, so the
    /// events are processed again on restart.
    #[error("{count} output record(s) undelivered after {waited_ms} ms: {last_error}")]
    Undelivered {
        /// Records still unacknowledged.
        count: usize,
        /// How long delivery was retried.
        waited_ms: u64,
        /// The most recent delivery error.
        last_error: String,
    },
    /// A thread of the service stopped, so the service stops too (the cause was logged
    /// or returned first).
    #[error("service stopped: {0}")]
    Stopped(String),
    /// The metrics endpoint could not be started.
    #[error("metrics endpoint on {addr}: {detail}")]
    Metrics {
        /// The address that was asked for.
        addr: String,
        /// What failed.
        detail: String,
    },
}

impl Error {
    /// A stable, machine-readable identifier for the failure class.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DetectorConfig(_) => "detector_config",
            Error::Store { .. } => "state_store",
            Error::CorruptState { .. } => "state_corrupt",
            Error::Io { .. } => "io",
            Error::InvalidInput { .. } => "invalid_input",
            Error::SchemaDrift(_) => "schema_drift",
            Error::Metrics { .. } => "metrics",
            Error::Config(_) => "config",
            Error::Kafka { .. } => "kafka",
            Error::MissingTopics(_) => "missing_topics",
            Error::Undelivered { .. } => "undelivered",
            Error::Stopped(_) => "stopped",
            Error::Registry(_) => "registry",
            Error::Approvals(_) => "approvals",
            Error::SigningKey(_) => "signing_key",
            Error::Usage(_) => "usage",
        }
    }

    /// Wraps an I/O error with what was being attempted.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_per_variant() {
        let errors = [
            Error::DetectorConfig(vec!["x".into()]),
            Error::CorruptState {
                agent_id: "a".into(),
                reason: "r".into(),
            },
            Error::io("ctx", std::io::Error::other("boom")),
            Error::InvalidInput {
                context: "c".into(),
                detail: "d".into(),
            },
            Error::SchemaDrift(vec!["a.json".into()]),
            Error::Config(vec!["x".into()]),
            Error::Kafka {
                context: "c".into(),
                source: "cancelled".into(),
            },
            Error::MissingTopics(vec!["t".into()]),
            Error::Stopped("x".into()),
            Error::Registry(vec!["x".into()]),
            Error::Approvals(vec!["x".into()]),
            Error::SigningKey("x".into()),
            Error::Usage("x".into()),
            Error::Undelivered {
                count: 1,
                waited_ms: 1,
                last_error: "e".into(),
            },
            Error::Metrics {
                addr: "127.0.0.1:1".into(),
                detail: "d".into(),
            },
        ];
        let codes: std::collections::BTreeSet<_> = errors.iter().map(Error::code).collect();
        assert_eq!(codes.len(), errors.len());
    }
}
