//! Parsing and validating the service config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::secret::{is_secret_property, Secret};
use super::{OffsetReset, ServiceConfig, Topics};
use crate::diagnostics::{toml_problem, Diagnostics};
use crate::error::{Error, Result};
use crate::model::time::parse_positive_duration_ms;
use crate::telemetry::LogFormat;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSpec {
    brokers: Option<String>,
    group_id: Option<String>,
    offset_reset: Option<String>,
    create_topics: Option<bool>,
    partitions: Option<i32>,
    rekey: Option<bool>,
    #[serde(default)]
    topics: TopicsSpec,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsSpec {
    events: Option<String>,
    alerts: Option<String>,
    commands: Option<String>,
    dlq: Option<String>,
    changelog: Option<String>,
    credentials: Option<String>,
    fleet: Option<String>,
    repartition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateSpec {
    dir: Option<PathBuf>,
    flush_interval: Option<String>,
    cache_capacity: Option<usize>,
    changelog: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSpec {
    max_event_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSpec {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSpec {
    format: Option<String>,
    progress_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorsSpec {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrySpec {
    file: Option<PathBuf>,
    topic: Option<String>,
    enforce: Option<bool>,
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsSpec {
    file: Option<PathBuf>,
    topic: Option<String>,
    grace: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeSpec {
    max_ahead: Option<String>,
    max_behind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningSpec {
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownSpec {
    timeout: Option<String>,
}

const SECTIONS: [&str; 11] = [
    "kafka",
    "state",
    "input",
    "time",
    "metrics",
    "log",
    "detectors",
    "registry",
    "approvals",
    "signing",
    "shutdown",
];

/// Collects problems with their lines while one file is checked.
struct Checker<'a> {
    found: Diagnostics<'a>,
}

impl Checker<'_> {
    fn at(&mut self, key: &str, message: String) {
        self.found.at_key(key, message);
    }

    /// Deserializes one section; a problem names the offending key's line when serde says
    /// which key it was (unknown or mistyped), else the section header's.
    fn section<T: DeserializeOwned + Default>(&mut self, table: &mut toml::Table, name: &str) -> T {
        let Some(value) = table.remove(name) else {
            return T::default();
        };
        match value.try_into::<T>() {
            Ok(spec) => spec,
            Err(e) => {
                let message = e.message().trim().to_string();
                let key = message
                    .split('`')
                    .nth(1)
                    .filter(|key| self.found.line_of(key) > 1)
                    .unwrap_or(name)
                    .to_string();
                self.at(&key, format!("[{name}] {message}"));
                T::default()
            }
        }
    }

    fn duration(&mut self, key: &str, text: Option<&str>, default: Duration) -> Duration {
        let default_ms = i64::try_from(default.as_millis()).unwrap_or(i64::MAX);
        Duration::from_millis(self.duration_ms(key, text, default_ms).unsigned_abs())
    }

    /// Like [`Checker::duration`], in milliseconds.
    fn duration_ms(&mut self, key: &str, text: Option<&str>, default: i64) -> i64 {
        let Some(text) = text else { return default };
        match parse_positive_duration_ms(text) {
            Some(ms) => ms,
            None => {
                self.at(
                    key,
                    format!("{key} {text:?} is not a positive duration like 500ms, 1s or 5m"),
                );
                default
            }
        }
    }
}

impl ServiceConfig {
    /// Reads and validates a config file; `Error::Config` lists every problem found.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        Self::parse(&path.display().to_string(), &text, &|name| {
            std::env::var(name).ok()
        })
    }

    /// Validates config text; `env` resolves `${NAME}` references (the process
    /// environment in [`ServiceConfig::load`], a map in tests).
    pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::Config(vec![toml_problem(file, text, &e)]))?;
        let mut check = Checker {
            found: Diagnostics::new(file, text),
        };
        let unknown: Vec<String> = table
            .keys()
            .filter(|key| !SECTIONS.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            check.at(
                &key,
                format!(
                    "unknown section or key {key:?} (known: {})",
                    SECTIONS.join(", ")
                ),
            );
        }
        let kafka: KafkaSpec = check.section(&mut table, "kafka");
        let state: StateSpec = check.section(&mut table, "state");
        let input: InputSpec = check.section(&mut table, "input");
        let time: TimeSpec = check.section(&mut table, "time");
        let metrics: MetricsSpec = check.section(&mut table, "metrics");
        let log: LogSpec = check.section(&mut table, "log");
        let detectors: DetectorsSpec = check.section(&mut table, "detectors");
        let shutdown: ShutdownSpec = check.section(&mut table, "shutdown");
        let registry: RegistrySpec = check.section(&mut table, "registry");
        let approvals: ApprovalsSpec = check.section(&mut table, "approvals");
        let signing: SigningSpec = check.section(&mut table, "signing");

        let mut config = ServiceConfig::default();
        apply_kafka(&mut check, &mut config, kafka, env);
        if let Some(dir) = state.dir {
            config.state_dir = dir;
        }
        config.flush_interval = check.duration(
            "flush_interval",
            state.flush_interval.as_deref(),
            config.flush_interval,
        );
        match state.cache_capacity {
            Some(0) => check.at("cache_capacity", "cache_capacity must be at least 1".into()),
            Some(capacity) => config.cache_capacity = capacity,
            None => {}
        }
        config.changelog = state.changelog.unwrap_or(config.changelog);
        match input.max_event_bytes {
            Some(bytes) if !(256..=64 * 1024 * 1024).contains(&bytes) => check.at(
                "max_event_bytes",
                format!("max_event_bytes {bytes} must be between 256 and 67108864"),
            ),
            Some(bytes) => config.max_event_bytes = bytes,
            None => {}
        }
        config.time.max_ahead_ms = check.duration_ms(
            "max_ahead",
            time.max_ahead.as_deref(),
            config.time.max_ahead_ms,
        );
        config.time.max_behind_ms = check.duration_ms(
            "max_behind",
            time.max_behind.as_deref(),
            config.time.max_behind_ms,
        );
        if let Some(listen) = metrics.listen {
            match listen.parse::<SocketAddr>() {
                Ok(addr) => config.metrics_listen = addr,
                Err(_) => check.at(
                    "listen",
                    format!("listen {listen:?} is not an address like 127.0.0.1:9464"),
                ),
            }
        }
        match log.format.as_deref() {
            None | Some("text") => config.log_format = LogFormat::Text,
            Some("json") => config.log_format = LogFormat::Json,
            Some(other) => check.at(
                "format",
                format!("log format {other:?} must be \"text\" or \"json\""),
            ),
        }
        config.progress_interval = check.duration(
            "progress_interval",
            log.progress_interval.as_deref(),
            config.progress_interval,
        );
        config.detectors_dir = detectors.dir;
        config.registry.enforce = registry.enforce.unwrap_or(registry.file.is_some());
        config.registry.file = registry.file;
        if let Some(topic) = registry.topic {
            if !valid_topic_name(&topic) {
                check.at(
                    "topic",
                    format!(
                        "registry topic {topic:?} must be 1-249 characters of a-z A-Z 0-9 . _ -"
                    ),
                );
            }
            config.registry.topic = topic;
            config.registry.topic_required = true;
        }
        config.registry.trusted_keys = resolve_keys(&mut check, registry.trusted_keys, env);
        apply_approvals(&mut check, &mut config, approvals, env);
        config.signing_key_file = signing.key_file;
        config.shutdown_timeout = check.duration(
            "timeout",
            shutdown.timeout.as_deref(),
            config.shutdown_timeout,
        );
        if check.found.is_empty() {
            Ok(config)
        } else {
            Err(Error::Config(check.found.into_problems()))
        }
    }
}

/// Trusted keys may be written as `${NAME}` (a base64 key line from the environment).
fn resolve_keys(
    check: &mut Checker<'_>,
    keys: Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    keys.into_iter()
        .filter_map(|key| match expand_env(&key, env) {
            Ok((text, _)) if text.trim().is_empty() => {
                check.at(
                    "trusted_keys",
                    "trusted_keys entries must not be empty".into(),
                );
                None
            }
            Ok((text, _)) => Some(text),
            Err(name) => {
                check.at(
                    "trusted_keys",
                    format!("trusted_keys: environment variable {name} is not set"),
                );
                None
            }
        })
        .collect()
}

fn apply_approvals(
    check: &mut Checker<'_>,
    config: &mut ServiceConfig,
    spec: ApprovalsSpec,
    env: &dyn Fn(&str) -> Option<String>,
) {
    let target = &mut config.approvals;
    target.file = spec.file;
    if let Some(topic) = spec.topic {
        if !valid_topic_name(&topic) {
            check.at(
                "topic",
                format!("approvals topic {topic:?} must be 1-249 characters of a-z A-Z 0-9 . _ -"),
            );
        }
        target.topic = Some(topic);
    }
    target.grace_ms = match spec.grace.as_deref() {
        None => target.grace_ms,
        Some("0") | Some("0s") => 0,
        Some(text) => check.duration_ms("grace", Some(text), target.grace_ms),
    };
    target.trusted_keys = resolve_keys(check, spec.trusted_keys, env);
    if !target.trusted_keys.is_empty() && !target.enabled() {
        check.at(
            "trusted_keys",
            "[approvals] trusted_keys needs an approval source (file or topic)".into(),
        );
    }
}

fn apply_kafka(
    check: &mut Checker<'_>,
    config: &mut ServiceConfig,
    kafka: KafkaSpec,
    env: &dyn Fn(&str) -> Option<String>,
) {
    let target = &mut config.kafka;
    if let Some(brokers) = kafka.brokers {
        if brokers.trim().is_empty() {
            check.at("brokers", "brokers must list at least one host:port".into());
        }
        target.brokers = brokers;
    }
    if let Some(group) = kafka.group_id {
        if group.trim().is_empty() {
            check.at("group_id", "group_id must not be empty".into());
        }
        target.group_id = group;
    }
    match kafka.offset_reset.as_deref() {
        None | Some("earliest") => target.offset_reset = OffsetReset::Earliest,
        Some("latest") => target.offset_reset = OffsetReset::Latest,
        Some(other) => check.at(
            "offset_reset",
            format!("offset_reset {other:?} must be \"earliest\" or \"latest\""),
        ),
    }
    target.create_topics = kafka.create_topics.unwrap_or(false);
    target.rekey = kafka.rekey.unwrap_or(false);
    match kafka.partitions {
        Some(n) if n < 1 => check.at("partitions", format!("partitions {n} must be at least 1")),
        Some(n) => target.partitions = n,
        None => {}
    }
    let defaults = Topics::default();
    let topics = kafka.topics;
    target.topics = Topics {
        events: topics.events.unwrap_or(defaults.events),
        alerts: topics.alerts.unwrap_or(defaults.alerts),
        commands: topics.commands.unwrap_or(defaults.commands),
        dlq: topics.dlq.unwrap_or(defaults.dlq),
        changelog: topics
            .changelog
            .unwrap_or_else(|| super::changelog_topic(&target.group_id)),
        credentials: topics
            .credentials
            .unwrap_or_else(|| super::credentials_topic(&target.group_id)),
        fleet: topics
            .fleet
            .unwrap_or_else(|| super::fleet_topic(&target.group_id)),
        repartition: topics
            .repartition
            .unwrap_or_else(|| super::repartition_topic(&target.group_id)),
    };
    let names = [
        ("events", &target.topics.events),
        ("alerts", &target.topics.alerts),
        ("commands", &target.topics.commands),
        ("dlq", &target.topics.dlq),
        ("changelog", &target.topics.changelog),
        ("credentials", &target.topics.credentials),
        ("fleet", &target.topics.fleet),
        ("repartition", &target.topics.repartition),
    ];
    for (key, name) in names {
        if !valid_topic_name(name) {
            check.at(
                key,
                format!("topic {name:?} must be 1-249 characters of a-z A-Z 0-9 . _ -"),
            );
        }
    }
    let mut distinct: Vec<&String> = names.iter().map(|(_, name)| *name).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < names.len() {
        check.at(
            "topics",
            "the events, alerts, commands, dlq, changelog, credentials, fleet and repartition topics must all differ"
                .into(),
        );
    }
    for (name, value) in kafka.options {
        let raw = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                check.at(
                    &name,
                    format!(
                        "option {name:?} must be a string, integer or boolean, not {}",
                        other.type_str()
                    ),
                );
                continue;
            }
        };
        match expand_env(&raw, env) {
            Ok((value, from_env)) => {
                let sensitive = from_env || is_secret_property(&name);
                target.options.insert(name, Secret::new(value, sensitive));
            }
            Err(missing) => check.at(
                &name,
                format!(
                    "option {name:?} refers to environment variable {missing} which is not set"
                ),
            ),
        }
    }
}

/// Kafka's own rule for topic names.
fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Replaces every `${NAME}` with the variable's value. Returns the text and whether any
/// reference was expanded, or the first variable that is not set.
fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut expanded = false;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        let value = env(name).ok_or_else(|| name.to_string())?;
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &rest[start + 3 + len..];
        expanded = true;
    }
    out.push_str(rest);
    Ok((out, expanded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KAFKA_PASSWORD").then(|| "s3cret".to_string())
    }

    fn problems(text: &str) -> Vec<String> {
        match ServiceConfig::parse("svc.toml", text, &env) {
            Err(Error::Config(problems)) => problems,
            other => panic!("expected config problems, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_safe_defaults() {
        let config = ServiceConfig::parse("svc.toml", "", &env).unwrap();
        assert_eq!(config.kafka.topics, Topics::default());
        assert_eq!(config.time, crate::model::watermark::TimeBounds::default());
        assert!(
            !config.registry.enforce,
            "no registry file: nothing to enforce"
        );
        assert!(config.metrics_listen.ip().is_loopback());
        assert_eq!(config.kafka.offset_reset, OffsetReset::Earliest);
        assert!(!config.kafka.create_topics);
        assert!(!config.kafka.rekey, "events are keyed by agent unless told");
    }

    #[test]
    fn full_file_is_applied() {
        let text = r#"
[kafka]
brokers = "k1:9092,k2:9092"
group_id = "aw"
offset_reset = "latest"
create_topics = true
partitions = 6
rekey = true
[kafka.topics]
events = "ev"
dlq = "ev-dlq"
[kafka.options]
"security.protocol" = "SASL_SSL"
"sasl.password" = "${KAFKA_PASSWORD}"
"queued.max.messages.kbytes" = 65536
[state]
dir = "/var/lib/aw"
flush_interval = "250ms"
[metrics]
listen = "0.0.0.0:9000"
[log]
format = "json"
[shutdown]
timeout = "5s"
"#;
        let config = ServiceConfig::parse("svc.toml", text, &env).unwrap();
        assert_eq!(config.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(config.kafka.partitions, 6);
        assert_eq!(config.kafka.topics.events, "ev");
        assert_eq!(config.kafka.topics.alerts, "agent-alerts");
        assert!(config.kafka.rekey);
        assert_eq!(
            config.kafka.topics.repartition, "aw-repartition",
            "internal topics are named after the group"
        );
        assert_eq!(config.flush_interval, Duration::from_millis(250));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(config.log_format, LogFormat::Json);
        let password = &config.kafka.options["sasl.password"];
        assert_eq!(password.expose(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(
            config.kafka.options["queued.max.messages.kbytes"].expose(),
            "65536"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "\
[kafka]
brokerz = \"x\"
offset_reset = \"sometimes\"
[kafka.options]
\"sasl.password\" = \"${MISSING_VAR}\"
[state]
flush_interval = \"soon\"
[metrics]
listen = \"localhost\"
[bogus]
";
        let found = problems(text);
        let expect = [
            ("svc.toml:10:", "bogus"),
            ("svc.toml:2:", "brokerz"),
            ("svc.toml:7:", "soon"),
            ("svc.toml:9:", "localhost"),
        ];
        for (line, needle) in expect {
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with(line) && p.contains(needle)),
                "{line} {needle} missing from {found:#?}"
            );
        }
        assert_eq!(found.len(), 4, "{found:#?}");
        let text = "[kafka]\noffset_reset = \"sometimes\"\n[kafka.options]\n\"sasl.password\" = \"${MISSING_VAR}\"\n[kafka.topics]\nalerts = \"agent-events\"\n";
        let found = problems(text);
        assert!(found
            .iter()
            .any(|p| p.starts_with("svc.toml:2:") && p.contains("sometimes")));
        assert!(found
            .iter()
            .any(|p| p.starts_with("svc.toml:4:") && p.contains("MISSING_VAR")));
        assert!(found.iter().any(|p| p.contains("must all differ")));
    }

    #[test]
    fn time_bounds_are_read_and_checked() {
        use crate::model::time::{DAY_MS, HOUR_MS};
        let text = "[time]\nmax_ahead = \"15m\"\nmax_behind = \"30d\"\n";
        let config = ServiceConfig::parse("svc.toml", text, &env).unwrap();
        assert_eq!(config.time.max_ahead_ms, 15 * 60_000);
        assert_eq!(config.time.max_behind_ms, 30 * DAY_MS);
        let config = ServiceConfig::parse("svc.toml", "[time]\n", &env).unwrap();
        assert_eq!(config.time.max_ahead_ms, HOUR_MS);

        let found = problems("[kafka]\n[time]\nmax_ahead = \"soon\"\nmax_behind = \"0s\"\n");
        for (line, needle) in [
            ("svc.toml:3:", "max_ahead \"soon\""),
            ("svc.toml:4:", "max_behind \"0s\""),
        ] {
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with(line) && p.contains(needle)),
                "{line} {needle} missing from {found:#?}"
            );
        }
        let found = problems("[time]\nmax_lag = \"1h\"\n");
        assert!(
            found[0].starts_with("svc.toml:2:") && found[0].contains("max_lag"),
            "{found:?}"
        );
    }

    #[test]
    fn approvals_are_off_by_default_and_configured_in_their_section() {
        let config = ServiceConfig::parse("svc.toml", "", &env).unwrap();
        assert!(!config.approvals.enabled());
        let text = "[approvals]\ntopic = \"agent-approvals\"\nfile = \"a.jsonl\"\ngrace = \"5m\"\ntrusted_keys = [\"k.pub\", \"${KAFKA_PASSWORD}\"]\n[registry]\ntrusted_keys = [\"r.pub\"]\n";
        let config = ServiceConfig::parse("svc.toml", text, &env).unwrap();
        assert!(config.approvals.enabled());
        assert_eq!(config.approvals.grace_ms, 300_000);
        assert_eq!(config.approvals.trusted_keys, ["k.pub", "s3cret"]);
        assert_eq!(config.registry.trusted_keys, ["r.pub"]);
        let config = ServiceConfig::parse(
            "svc.toml",
            "[approvals]\nfile = \"a\"\ngrace = \"0s\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(config.approvals.grace_ms, 0);
        let found =
            problems("[approvals]\ngrace = \"soon\"\ntrusted_keys = [\"${NOPE}\", \"k.pub\"]\n");
        assert!(
            found
                .iter()
                .any(|p| p.contains("svc.toml:2:") && p.contains("grace")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.contains("NOPE")), "{found:?}");
        assert!(
            found.iter().any(|p| p.contains("needs an approval source")),
            "{found:?}"
        );
    }

    #[test]
    fn registry_enforcement_defaults_to_whether_a_file_is_given() {
        let config =
            ServiceConfig::parse("svc.toml", "[registry]\nfile = \"r.toml\"\n", &env).unwrap();
        assert!(
            config.registry.enforce,
            "a registry file is enforced by default"
        );
        let text = "[registry]\nfile = \"r.toml\"\nenforce = false\n";
        let config = ServiceConfig::parse("svc.toml", text, &env).unwrap();
        assert!(!config.registry.enforce);
        let text = "[registry]\ntopic = \"ids\"\nenforce = true\n";
        let config = ServiceConfig::parse("svc.toml", text, &env).unwrap();
        assert!(config.registry.enforce && config.registry.file.is_none());
        let found = problems("[kafka]\n[registry]\nenforce = \"yes\"\n");
        assert!(
            found.len() == 1 && found[0].contains("[registry]"),
            "{found:?}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let found = problems("[kafka]\nbrokers = \n");
        assert!(found[0].starts_with("svc.toml:2:"), "{found:?}");
    }

    #[test]
    fn env_references_expand_in_place() {
        assert_eq!(
            expand_env("user:${KAFKA_PASSWORD}!", &env),
            Ok(("user:s3cret!".into(), true))
        );
        assert_eq!(expand_env("plain", &env), Ok(("plain".into(), false)));
        assert_eq!(expand_env("${NOPE}", &env), Err("NOPE".into()));
    }
}
