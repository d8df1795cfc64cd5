//! librdkafka client settings shared by every client the service creates.

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Which client a configuration is for; each gets defaults that suit its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The events consumer of `run`.
    Consumer,
    /// The re-keying router's consumer: the events consumer's settings, and told when
    /// it reaches the end of a partition, so that its merge by event time knows which
    /// partitions can still deliver something older.
    Router,
    /// The outputs producer of `run` and `simulate --to-kafka`.
    Producer,
    /// The rekey router's producer: the outputs producer's settings, and never a gap in
    /// what it forwards. The engine skips a forwarded record whose source offset is
    /// below one it has seen ([`crate::kafka::forwarded`]), so a record that timed out
    /// and was sent again after later ones would be skipped for good: records never
    /// time out in its queue, and a failure that would leave a gap is fatal instead.
    Forwarder,
    /// One-off consumers (`tail`) that must not disturb the service's group.
    Reader,
}

/// Largest record the producer may write: a dead letter keeps the original bytes of an
/// oversized event, so this is well above the event size limit.
pub const MAX_PRODUCED_BYTES: usize = 32 * 1024 * 1024;

/// Builds a librdkafka configuration: the service's defaults for `role`, then every
/// pass-through option from the config file (so an operator can override any default).
pub fn client_config(kafka: &KafkaConfig, role: Role) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    match role {
        Role::Consumer | Role::Router => {
            config
                .set("group.id", &kafka.group_id)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", kafka.offset_reset.as_str())
                // librdkafka pauses fetching for this long once its queue is full; the
                // default (1 s) collapses throughput whenever the engine falls behind.
                .set("fetch.queue.backoff.ms", "10")
                // How long a fetch may wait for data. Some brokers (Tansu among them)
                // answer only when it expires, so librdkafka's default (500 ms) would be
                // the floor of event-to-decision latency. Apache Kafka answers as soon as
                // data arrives; there, raising it only saves idle fetch requests.
                .set("fetch.wait.max.ms", "10")
                // Per-partition fetch size. Kafka returns a record larger than this anyway
                // (KIP-74), but some brokers (Tansu 0.6 on SQLite) return nothing and the
                // partition stalls; 16 MiB lets oversized events reach the dead-letter
                // topic there too.
                .set("fetch.message.max.bytes", (16 * 1024 * 1024).to_string())
                // The end of a partition tells the merge by event time that nothing
                // older can come from it for now (`kafka::merge`).
                .set("enable.partition.eof", "true")
                // Statistics carry per-partition consumer lag for the lag gauge.
                .set("statistics.interval.ms", "5000");
        }
        Role::Producer | Role::Forwarder => {
            config
                .set("enable.idempotence", "true")
                .set("linger.ms", "5")
                .set("message.max.bytes", MAX_PRODUCED_BYTES.to_string());
            if role == Role::Forwarder {
                config
                    .set("message.timeout.ms", "0")
                    .set("enable.gapless.guarantee", "true");
            }
        }
        Role::Reader => {
            config
                .set("group.id", format!("{}-reader", kafka.group_id))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", kafka.offset_reset.as_str());
        }
    }
    for (name, value) in &kafka.options {
        config.set(name, value.expose());
    }
    if role == Role::Reader {
        // Readers of compacted topics have no context to take statistics, which the
        // default one would log at info level every interval.
        config.set("statistics.interval.ms", "0");
    }
    config
}
