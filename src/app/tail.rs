//! `agentwatch tail`: follow the alerts (or commands, or dead-letter) topic and print each
//! record readably, without joining the service's consumer group.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use super::render::format_alert;
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::kafka::client::{client_config, Role};
use crate::model::{Alert, Command};

/// What to follow and when to stop.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Kafka connection.
    pub kafka: KafkaConfig,
    /// Topic to follow.
    pub topic: String,
    /// Start at the oldest record instead of the next new one.
    pub from_beginning: bool,
    /// Print the raw JSON instead of the readable form.
    pub json: bool,
    /// Stop after this many records.
    pub max_records: Option<u64>,
    /// Stop when nothing arrives for this long.
    pub idle_timeout: Option<Duration>,
}

/// Prints records until `stop` is set or a limit is reached; returns how many it printed.
pub fn tail(options: &TailOptions, out: &mut dyn Write, stop: &AtomicBool) -> Result<u64> {
    let unique = format!(
        "{}-tail-{}-{}",
        options.kafka.group_id,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let consumer: BaseConsumer = client_config(&options.kafka, Role::Reader)
        .set("group.id", &unique)
        .set(
            "auto.offset.reset",
            if options.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        .create()
        .map_err(|e| Error::kafka("creating consumer", e))?;
    consumer
        .subscribe(&[&options.topic])
        .map_err(|e| Error::kafka(format!("subscribing to {}", options.topic), e))?;
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if options.max_records.is_some_and(|max| printed >= max) {
            break;
        }
        if options
            .idle_timeout
            .is_some_and(|idle| last_record.elapsed() >= idle)
        {
            break;
        }
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                continue;
            }
            Some(Ok(message)) => message,
        };
        last_record = Instant::now();
        let payload = message.payload().unwrap_or_default();
        let text = if options.json {
            format!("{}\n", String::from_utf8_lossy(payload))
        } else {
            readable(payload, message.headers())
        };
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`tail | head`): stop quietly, like other Unix tools.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(Error::io("writing to stdout", e)),
        }
        printed += 1;
    }
    Ok(printed)
}

/// An alert or command in the demo's readable form; anything else (dead letters) as its
/// error headers and the start of its payload.
fn readable(payload: &[u8], headers: Option<&rdkafka::message::BorrowedHeaders>) -> String {
    if let Ok(alert) = serde_json::from_slice::<Alert>(payload) {
        return format!("{}  {}", alert.agent_id, format_alert(&alert, &[]));
    }
    if let Ok(command) = serde_json::from_slice::<Command>(payload) {
        return format!(
            "{}  {} until {} ({}){}\n",
            command.agent_id,
            command.action.as_str(),
            command.expires_at,
            command.reason.summary,
            command
                .credential_id
                .as_deref()
                .map(|c| format!(" credential {c}"))
                .unwrap_or_default()
        );
    }
    let mut text = String::from("record");
    if let Some(headers) = headers {
        for header in headers.iter() {
            if header.key.starts_with("agentwatch.") {
                let value = header
                    .value
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                text.push_str(&format!(" {}={value}", header.key));
            }
        }
    }
    let preview: String = String::from_utf8_lossy(&payload[..payload.len().min(120)]).into();
    format!("{text} payload[{}]: {preview:?}\n", payload.len())
}
