//! The baseline for the end-to-end benchmark: how fast a bare rdkafka consumer, with the
//! same client settings as `agentwatch run`, reads a topic without doing anything with
//! the records. `scripts/kafka-load.sh` runs it next to the service on the same topic.
//!
//! ```text
//! cargo run --release --example raw_consume -- BROKERS TOPIC RECORDS
//! ```

use std::time::{Duration, Instant};

use agentwatch::config::{KafkaConfig, ServiceConfig};
use agentwatch::kafka::client::{client_config, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, records] = args.as_slice() else {
        return Err("usage: raw_consume BROKERS TOPIC RECORDS".into());
    };
    let wanted: u64 = records.parse()?;
    let kafka = KafkaConfig {
        brokers: brokers.clone(),
        group_id: format!("raw-consume-{}", std::process::id()),
        ..ServiceConfig::default().kafka
    };
    let consumer: BaseConsumer = client_config(&kafka, Role::Consumer).create()?;
    consumer.subscribe(&[topic])?;
    let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count < wanted && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Instant::now);
                bytes += message.payload().map_or(0, <[u8]>::len) as u64;
                if let Some(created_ms) = message.timestamp().to_millis() {
                    let now_us = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_micros() as i64;
                    latency.saturating_record((now_us - created_ms * 1000).max(0) as u64);
                }
                count += 1;
            }
            Some(Err(error)) => eprintln!("consumer error: {error}"),
            None => {}
        }
    }
    let elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "raw consumer: {count} records ({:.1} MiB) in {:.2}s = {:.0} records/s; \
         record-to-consumer latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        bytes as f64 / (1024.0 * 1024.0),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64().max(1e-9),
        ms(0.5),
        ms(0.99),
        ms(0.999)
    );
    if count < wanted {
        return Err(format!("only {count} of {wanted} records arrived within 10 minutes").into());
    }
    Ok(())
}
