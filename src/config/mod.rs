//! The service configuration file of `agentwatch run` (TOML).
//!
//! Every section is optional and every setting has a default that is safe to run on one
//! machine: brokers on `127.0.0.1:9092`, metrics on loopback, the detectors compiled into
//! the binary. Unknown keys are errors, and [`ServiceConfig::load`] reports every problem
//! of a file at once, each with its line, so an operator fixes a config in one pass.
//!
//! Values written as `${NAME}` are read from the environment when the file is loaded. That
//! is how SASL passwords and TLS key passphrases reach librdkafka without being written in
//! the file; such values are kept out of `Debug` output and logs (see [`Secret`]).

mod load;
mod secret;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use secret::Secret;

use crate::model::watermark::TimeBounds;
use crate::telemetry::LogFormat;

/// Where consumption starts on a partition for which neither the state store nor the
/// consumer group has an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The oldest retained event: a new deployment learns from the history it can see.
    Earliest,
    /// Only events produced from now on.
    Latest,
}

impl OffsetReset {
    /// The librdkafka spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        }
    }
}

/// The topics the service reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Agent events in (agent-event v1 JSON, keyed by agent_id).
    pub events: String,
    /// Alerts out (alert v1).
    pub alerts: String,
    /// Response commands out (command v1).
    pub commands: String,
    /// Records that could not be decoded, with the original bytes and an error code.
    pub dlq: String,
    /// Agent states and partition positions, compacted, partitioned like `events`: what
    /// an instance restores a partition from when it takes it over (see
    /// [`crate::state::changelog`]). One per consumer group, so by default named after
    /// it: `{group_id}-state-changelog`.
    pub changelog: String,
    /// First uses of credentials, compacted, shared by the group's instances: how an
    /// instance learns that an agent on another instance already uses a credential (see
    /// [`crate::pipeline::CredentialLedger`]). By default one per group,
    /// `{group_id}-credentials`, like the changelog.
    pub credentials: String,
    /// Agents showing fleet patterns (a rollout's first uses, an outage's failures),
    /// compacted, shared by the group's instances: how a pattern spread over several
    /// instances is still seen as one (see [`crate::pipeline::FleetContext`]). By
    /// default `{group_id}-fleet`: two deployments sharing it would each take the
    /// other's fleet alert for their own and stay silent.
    pub fleet: String,
    /// Events re-keyed by `agent_id`, when [`KafkaConfig::rekey`] is on: the topic the
    /// engine then consumes instead of `events` (an internal topic, as Kafka Streams'
    /// repartition topics are). By default `{group_id}-repartition`.
    pub repartition: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            events: "agent-events".into(),
            alerts: "agent-alerts".into(),
            commands: "agent-commands".into(),
            dlq: "agent-events-dlq".into(),
            changelog: changelog_topic("agentwatch"),
            credentials: credentials_topic("agentwatch"),
            fleet: fleet_topic("agentwatch"),
            repartition: repartition_topic("agentwatch"),
        }
    }
}

/// The default shared-credentials topic of a consumer group.
pub fn credentials_topic(group_id: &str) -> String {
    format!("{group_id}-credentials")
}

/// The default fleet topic of a consumer group.
pub fn fleet_topic(group_id: &str) -> String {
    format!("{group_id}-fleet")
}

/// The default repartition topic of a consumer group.
pub fn repartition_topic(group_id: &str) -> String {
    format!("{group_id}-repartition")
}

/// The default changelog topic of a consumer group: two groups must never share one.
pub fn changelog_topic(group_id: &str) -> String {
    format!("{group_id}-state-changelog")
}

/// How to reach Kafka.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The consumer group; instances in one group share the partitions.
    pub group_id: String,
    /// See [`OffsetReset`].
    pub offset_reset: OffsetReset,
    /// Create missing topics at start instead of refusing to start.
    pub create_topics: bool,
    /// Partitions for topics created by `create_topics`.
    pub partitions: i32,
    /// Re-key the events topic by `agent_id` before the engine sees it. Partitions are
    /// shared out among a group's instances, and an agent's state lives with the
    /// partition its events come from, so every event of an agent must be on one
    /// partition. Producers that do not key by agent (or key by something else) break
    /// that; with `rekey`, each instance also runs a router that forwards the events
    /// topic to [`Topics::repartition`] keyed by `agent_id`, and the engine consumes
    /// that topic instead.
    pub rekey: bool,
    /// Topic names.
    pub topics: Topics,
    /// Extra librdkafka properties (TLS, SASL, tuning), applied to every client after the
    /// service's own defaults so that an operator can override any of them.
    pub options: BTreeMap<String, Secret>,
}

/// The whole service configuration, validated.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// RocksDB directory holding agent state and consumed offsets.
    pub state_dir: PathBuf,
    /// How often state and offsets are committed (after outputs are acknowledged). Longer
    /// means fewer RocksDB writes per event; shorter means less reprocessing after a crash.
    pub flush_interval: Duration,
    /// Agents kept in memory.
    pub cache_capacity: usize,
    /// Write agent states to the changelog topic with each commit, and restore a
    /// partition from it when the local state is missing or behind. Needed for a group of
    /// instances (partitions move between them); a lone instance may turn it off to save
    /// the traffic.
    pub changelog: bool,
    /// Largest accepted event in bytes; bigger records go to the DLQ.
    pub max_event_bytes: usize,
    /// How long shutdown may take to finish the batch in flight and commit.
    pub shutdown_timeout: Duration,
    /// Prometheus endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub metrics_listen: SocketAddr,
    /// Text for people, JSON for log pipelines.
    pub log_format: LogFormat,
    /// Detector instances; `None` runs the ones compiled into the binary.
    pub detectors_dir: Option<PathBuf>,
    /// Interval of the one-line progress log.
    pub progress_interval: Duration,
    /// Where agent identities come from.
    pub registry: RegistryConfig,
    /// Where human approvals of high-risk actions come from.
    pub approvals: ApprovalsConfig,
    /// The key commands are signed with (`None`: `$AGENTWATCH_SIGNING_KEY`, if set).
    pub signing_key_file: Option<PathBuf>,
    /// How far event time may stray from each partition's watermark and the wall clock
    /// before an event goes to the dead-letter topic as `time_out_of_range`.
    pub time: TimeBounds,
}

/// Where agent identities come from. Both sources may be used: the file is the base, the
/// topic's records are applied on top as they arrive (last write wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// A registry file (TOML or JSON), re-read when it changes.
    pub file: Option<PathBuf>,
    /// The compacted registry topic (key = agent_id, empty value removes the agent).
    pub topic: String,
    /// True when the topic was named in the config: then it must exist (or be created),
    /// while the default name is only read if it exists.
    pub topic_required: bool,
    /// Whether agents missing from the registry (or registered without an owner) are
    /// flagged as `unregistered_agent`. Default: on when a `file` is given (a file is
    /// meant to list the whole fleet), off otherwise. Records on the topic never switch
    /// it on by themselves: they only supply facts about the agents they name.
    pub enforce: bool,
    /// Public keys (key files, or base64 lines) whose signatures a registry record (in
    /// the file or on the topic) needs to take effect. Empty: records are not checked.
    pub trusted_keys: Vec<String>,
}

/// Where approvals come from (see [`crate::approvals`]). With neither a file nor a
/// topic, approvals are not verified: `high_risk_action` accepts any `approval_id`,
/// and the service warns at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// An approvals file (JSON lines or a JSON list), re-read when it changes.
    pub file: Option<PathBuf>,
    /// The compacted approvals topic (key = approval_id, empty value withdraws).
    pub topic: Option<String>,
    /// How late an approval may be and still cover its action, in event time.
    pub grace_ms: i64,
    /// Public keys (key files, or base64 lines) whose signatures an approval needs to
    /// take effect. Empty: approvals are not checked.
    pub trusted_keys: Vec<String>,
}

impl ApprovalsConfig {
    /// The default grace: two minutes covers clock skew and ordinary topic lag.
    pub const DEFAULT_GRACE_MS: i64 = 120_000;

    /// True when an approval source is configured (and so approvals are verified).
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.topic.is_some()
    }
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            file: None,
            topic: None,
            grace_ms: Self::DEFAULT_GRACE_MS,
            trusted_keys: Vec::new(),
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            file: None,
            topic: "agent-registry".into(),
            topic_required: false,
            enforce: false,
            trusted_keys: Vec::new(),
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            kafka: KafkaConfig {
                brokers: "127.0.0.1:9092".into(),
                group_id: "agentwatch".into(),
                offset_reset: OffsetReset::Earliest,
                create_topics: false,
                partitions: 1,
                rekey: false,
                topics: Topics::default(),
                options: BTreeMap::new(),
            },
            state_dir: PathBuf::from("agentwatch-state"),
            flush_interval: Duration::from_secs(1),
            cache_capacity: crate::state::DEFAULT_CACHE_CAPACITY,
            changelog: true,
            max_event_bytes: crate::model::Limits::default().max_message_bytes,
            shutdown_timeout: Duration::from_secs(30),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            log_format: LogFormat::Text,
            detectors_dir: None,
            progress_interval: Duration::from_secs(10),
            registry: RegistryConfig::default(),
            approvals: ApprovalsConfig::default(),
            signing_key_file: None,
            time: TimeBounds::default(),
        }
    }
}
