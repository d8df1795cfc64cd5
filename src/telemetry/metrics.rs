//! Prometheus metrics (prefix `agentwatch_`; never `agent_id` as a label: agents are
//! unbounded, label cardinality must not be).

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry as MetricSet, TextEncoder,
};

use super::labels::{
    Absorbed, ApprovalSource, EventResult, Output, RecordSource, RegistrySource, ReloadResult,
    RECORD_REJECTION_CODES,
};
use crate::model::{Alert, Command, CommandAction, DecodeError, Severity};

/// Every metric agentwatch exports, in its own Prometheus metric set ("registry" in
/// prometheus' terms; in agentwatch the word means the agent registry only).
pub struct Metrics {
    set: MetricSet,
    events: IntCounterVec,
    decode_errors: IntCounterVec,
    findings: IntCounterVec,
    absorbed: IntCounterVec,
    alerts: IntCounterVec,
    commands: IntCounterVec,
    flush_duration: Histogram,
    agents_tracked: IntGauge,
    cache_hit_ratio: Gauge,
    dlq_records: IntCounterVec,
    produced: IntCounterVec,
    delivery_failures: IntCounterVec,
    registry_changes: IntCounterVec,
    registry_reloads: IntCounterVec,
    registry_agents: IntGauge,
    consumer_lag: IntGaugeVec,
    decision_latency: Histogram,
    records_rejected: IntCounterVec,
    approval_changes: IntCounterVec,
    approvals: IntGauge,
    agents_waiting: IntGauge,
    restoring: IntGauge,
    restored_agents: IntCounter,
    restore_duration: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(set: &MetricSet, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    set.register(Box::new(vec.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} registered twice: {e}"));
    vec
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric, with known label values pre-set to zero so
    /// that dashboards and rate() see series from the start.
    pub fn new() -> Self {
        let set = MetricSet::new();
        let events = counter(
            &set,
            "agentwatch_events_total",
            "Events consumed, by result (processed or invalid).",
            &["result"],
        );
        let decode_errors = counter(
            &set,
            "agentwatch_decode_errors_total",
            "Events rejected as invalid (by the decoder, or time_out_of_range against the time bounds), by error code.",
            &["code"],
        );
        let findings = counter(
            &set,
            "agentwatch_findings_total",
            "Findings above a detector's alert threshold (once warmed up, or a broken rule; before cooldown), by detector and severity.",
            &["detector", "severity"],
        );
        let absorbed = counter(
            &set,
            "agentwatch_findings_absorbed_total",
            "Anomalous findings that raised no per-agent alert because they were new behaviour being learned or part of a fleet-wide event, by detector and reason.",
            &["detector", "reason"],
        );
        let alerts = counter(
            &set,
            "agentwatch_alerts_total",
            "Alerts emitted, by severity.",
            &["severity"],
        );
        let commands = counter(
            &set,
            "agentwatch_commands_total",
            "Response commands emitted, by action.",
            &["action"],
        );
        let flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "agentwatch_flush_duration_seconds",
                "Time to write dirty agent state and offsets to RocksDB in one batch.",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14).unwrap_or_default()),
        )
        .unwrap_or_else(|e| unreachable!("static histogram: {e}"));
        let agents_tracked = IntGauge::new(
            "agentwatch_agents_tracked",
            "Agents whose state is held in memory.",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let cache_hit_ratio = Gauge::new(
            "agentwatch_cache_hit_ratio",
            "Share of agent lookups answered from memory since start.",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let dlq_records = counter(
            &set,
            "agentwatch_dlq_records_total",
            "Records sent to the dead-letter topic, by error code.",
            &["code"],
        );
        let produced = counter(
            &set,
            "agentwatch_records_produced_total",
            "Output records acknowledged by Kafka, by output (alerts, commands, dlq).",
            &["output"],
        );
        let delivery_failures = counter(
            &set,
            "agentwatch_delivery_failures_total",
            "Output records Kafka did not acknowledge (each is retried), by output.",
            &["output"],
        );
        let registry_changes = counter(
            &set,
            "agentwatch_registry_changes_total",
            "Agent registry changes applied while running, by source (file or topic).",
            &["source"],
        );
        let registry_reloads = counter(
            &set,
            "agentwatch_registry_reloads_total",
            "Re-reads of a changed registry file, by result (applied, or rejected as invalid).",
            &["result"],
        );
        let records_rejected = counter(
            &set,
            "agentwatch_records_rejected_total",
            "Approval and registry records refused (they never take effect), by source and code: unsigned, unknown_key and bad_signature mean a record failed the trusted-key check.",
            &["source", "code"],
        );
        let approval_changes = counter(
            &set,
            "agentwatch_approval_changes_total",
            "Approvals granted or withdrawn while running, by source (file or topic).",
            &["source"],
        );
        let approvals = IntGauge::new(
            "agentwatch_approvals",
            "Approvals known to the engine (0 without an approval source).",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let agents_waiting = IntGauge::new(
            "agentwatch_agents_waiting_for_approval",
            "Agents with high-risk events held back until their approval arrives or the grace period ends.",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let registry_agents = IntGauge::new(
            "agentwatch_registry_agents",
            "Agents in the registry in force (0 without a registry).",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "agentwatch_consumer_lag",
                "Events in a partition not yet consumed (high watermark minus position).",
            ),
            &["topic", "partition"],
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let decision_latency = Histogram::with_opts(
            HistogramOpts::new(
                "agentwatch_decision_latency_seconds",
                "Time from an event's Kafka record timestamp to its decision by the engine.",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16).unwrap_or_default()),
        )
        .unwrap_or_else(|e| unreachable!("static histogram: {e}"));
        let restoring = IntGauge::new(
            "agentwatch_changelog_restoring",
            "Partitions being restored from the changelog topic right now (processing waits for them).",
        )
        .unwrap_or_else(|e| unreachable!("static gauge: {e}"));
        let restored_agents = IntCounter::new(
            "agentwatch_changelog_restored_agents_total",
            "Agent states restored from the changelog topic on taking over a partition.",
        )
        .unwrap_or_else(|e| unreachable!("static counter: {e}"));
        let restore_duration = Histogram::with_opts(
            HistogramOpts::new(
                "agentwatch_changelog_restore_seconds",
                "Time to restore one partition from the changelog topic (reading it and writing RocksDB).",
            )
            .buckets(prometheus::exponential_buckets(0.01, 2.0, 14).unwrap_or_default()),
        )
        .unwrap_or_else(|e| unreachable!("static histogram: {e}"));
        for metric in [
            Box::new(flush_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(restoring.clone()),
            Box::new(restored_agents.clone()),
            Box::new(restore_duration.clone()),
            Box::new(agents_tracked.clone()),
            Box::new(cache_hit_ratio.clone()),
            Box::new(consumer_lag.clone()),
            Box::new(decision_latency.clone()),
            Box::new(registry_agents.clone()),
            Box::new(approvals.clone()),
            Box::new(agents_waiting.clone()),
        ] {
            set.register(metric)
                .unwrap_or_else(|e| unreachable!("metric registered twice: {e}"));
        }
        for result in EventResult::ALL {
            events.with_label_values(&[result.as_str()]);
        }
        for code in DecodeError::CODES {
            decode_errors.with_label_values(&[code]);
        }
        for code in DecodeError::CODES {
            dlq_records.with_label_values(&[code]);
        }
        for output in Output::ALL {
            produced.with_label_values(&[output.as_str()]);
            delivery_failures.with_label_values(&[output.as_str()]);
        }
        for source in RegistrySource::ALL {
            registry_changes.with_label_values(&[source.as_str()]);
        }
        for result in ReloadResult::ALL {
            registry_reloads.with_label_values(&[result.as_str()]);
        }
        for source in RecordSource::ALL {
            for code in RECORD_REJECTION_CODES {
                records_rejected.with_label_values(&[source.as_str(), code]);
            }
        }
        for source in ApprovalSource::ALL {
            approval_changes.with_label_values(&[source.as_str()]);
        }
        for severity in Severity::ALL {
            alerts.with_label_values(&[severity.as_str()]);
        }
        for action in CommandAction::ALL {
            commands.with_label_values(&[action.as_str()]);
        }
        Metrics {
            set,
            events,
            decode_errors,
            findings,
            absorbed,
            alerts,
            commands,
            flush_duration,
            agents_tracked,
            cache_hit_ratio,
            dlq_records,
            produced,
            delivery_failures,
            registry_changes,
            registry_reloads,
            registry_agents,
            consumer_lag,
            decision_latency,
            records_rejected,
            approval_changes,
            approvals,
            agents_waiting,
            restoring,
            restored_agents,
            restore_duration,
        }
    }

    /// Pre-creates finding series for these detector ids.
    pub fn register_detectors<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        for id in ids {
            for severity in Severity::ALL {
                self.findings.with_label_values(&[id, severity.as_str()]);
            }
            for reason in Absorbed::ALL {
                self.absorbed.with_label_values(&[id, reason.as_str()]);
            }
        }
    }

    /// Counts a processed batch and what it produced.
    pub fn record_batch(&self, events: u64, alerts: &[Alert], commands: &[Command]) {
        self.events
            .with_label_values(&[EventResult::Processed.as_str()])
            .inc_by(events);
        self.record_alerts(alerts);
        for command in commands {
            self.commands
                .with_label_values(&[command.action.as_str()])
                .inc();
        }
    }

    /// Counts alerts by severity: a batch's, and the fleet alerts owed after a merge,
    /// which answer no batch.
    pub fn record_alerts(&self, alerts: &[Alert]) {
        for alert in alerts {
            self.alerts
                .with_label_values(&[alert.severity.as_str()])
                .inc();
        }
    }

    /// Counts second copies of forwarded records, skipped.
    pub fn record_second_copies(&self, count: u64) {
        self.events
            .with_label_values(&[EventResult::Duplicate.as_str()])
            .inc_by(count);
    }

    /// Counts a rejected event.
    pub fn record_invalid(&self, error: &DecodeError) {
        self.events
            .with_label_values(&[EventResult::Invalid.as_str()])
            .inc();
        self.decode_errors.with_label_values(&[error.code()]).inc();
    }

    /// Counts a finding above threshold.
    pub fn record_finding(&self, detector: &str, severity: Option<Severity>) {
        if let Some(severity) = severity {
            self.findings
                .with_label_values(&[detector, severity.as_str()])
                .inc();
        }
    }

    /// Counts an anomalous finding that raised no per-agent alert.
    pub fn record_absorbed(&self, detector: &str, reason: Absorbed) {
        self.absorbed
            .with_label_values(&[detector, reason.as_str()])
            .inc();
    }

    /// Records a flush.
    pub fn record_flush(&self, elapsed: Duration) {
        self.flush_duration.observe(elapsed.as_secs_f64());
    }

    /// Records the cache's state: agents in memory and lookups answered from memory
    /// (`hits`) or not (`misses`). Plain counts, so telemetry needs nothing from `state`.
    pub fn record_cache(&self, agents_in_memory: usize, hits: u64, misses: u64) {
        self.agents_tracked.set(agents_in_memory as i64);
        let total = hits + misses;
        if total > 0 {
            self.cache_hit_ratio.set(hits as f64 / total as f64);
        }
    }

    /// Counts a record written to the dead-letter topic.
    pub fn record_dead_letter(&self, code: &str) {
        self.dlq_records.with_label_values(&[code]).inc();
    }

    /// Counts an output record acknowledged by Kafka.
    pub fn record_delivered(&self, output: Output) {
        self.produced.with_label_values(&[output.as_str()]).inc();
    }

    /// Counts an output record Kafka refused or timed out.
    pub fn record_delivery_failure(&self, output: Output) {
        self.delivery_failures
            .with_label_values(&[output.as_str()])
            .inc();
    }

    /// Sets one partition's consumer lag.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Drops the lag series of partitions this instance no longer owns.
    pub fn forget_consumer_lag(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// The sum of the consumer lag over every partition this instance owns.
    pub fn total_consumer_lag(&self) -> i64 {
        use prometheus::core::Collector;
        self.consumer_lag
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_gauge().get_value() as i64)
            .sum()
    }

    /// Records the latencies from events entering Kafka to their decisions, a batch at
    /// once: into a local copy of the histogram, added to the shared one in one go
    /// (observing each into the shared histogram took two atomic updates per event).
    pub fn record_decision_latencies(&self, latencies: impl IntoIterator<Item = Duration>) {
        let local = self.decision_latency.local();
        for latency in latencies {
            local.observe(latency.as_secs_f64());
        }
        local.flush();
    }

    /// Counts agent registry changes applied from `source`.
    pub fn record_registry_changes(&self, source: RegistrySource, changes: usize) {
        self.registry_changes
            .with_label_values(&[source.as_str()])
            .inc_by(changes as u64);
    }

    /// Counts a registry file re-read and what became of it.
    pub fn record_registry_reload(&self, result: ReloadResult) {
        self.registry_reloads
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// Counts an approval or registry record refused at `source` with `code` (the
    /// record error's `code()`, one of [`RECORD_REJECTION_CODES`]).
    pub fn record_rejected(&self, source: RecordSource, code: &str) {
        self.records_rejected
            .with_label_values(&[source.as_str(), code])
            .inc();
    }

    /// Counts approval changes applied from `source`.
    pub fn record_approval_changes(&self, source: ApprovalSource, changes: usize) {
        self.approval_changes
            .with_label_values(&[source.as_str()])
            .inc_by(changes as u64);
    }

    /// Sets the number of known approvals and of agents waiting for one.
    pub fn set_approvals(&self, approvals: usize, agents_waiting: usize) {
        self.approvals.set(approvals as i64);
        self.agents_waiting.set(agents_waiting as i64);
    }

    /// A partition restore from the changelog started.
    pub fn restore_started(&self) {
        self.restoring.inc();
    }

    /// A partition restore ended, having restored `agents` (0 when the local state was
    /// current or the restore failed).
    pub fn restore_finished(&self, agents: usize, elapsed: Duration) {
        self.restoring.dec();
        self.restored_agents.inc_by(agents as u64);
        self.restore_duration.observe(elapsed.as_secs_f64());
    }

    /// Sets the number of registered agents.
    pub fn set_registry_agents(&self, agents: usize) {
        self.registry_agents.set(agents as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.set.gather(), &mut buffer) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_preregistered_series_with_counts() {
        let metrics = Metrics::new();
        metrics.record_batch(7, &[], &[]);
        metrics.record_invalid(&DecodeError::NotUtf8 { offset: 0 });
        let text = metrics.render();
        assert!(
            text.contains("agentwatch_events_total{result=\"processed\"} 7"),
            "{text}"
        );
        assert!(text.contains("agentwatch_events_total{result=\"invalid\"} 1"));
        assert!(text.contains("agentwatch_decode_errors_total{code=\"not_utf8\"} 1"));
        assert!(text.contains("agentwatch_dlq_records_total{code=\"time_out_of_range\"} 0"));
        assert!(text.contains("agentwatch_commands_total{action=\"suspend_agent\"} 0"));
    }
}
