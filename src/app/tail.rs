//! `agentwatch tail`: follow the alerts (or commands, or dead-letter) topic and print each
//! record readably, without joining the service's consumer group.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::render::format_alert;
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::kafka::reader::{read_topic, StartAt, TopicRecord};
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
    let mut printed = 0u64;
    let last_record = std::cell::Cell::new(Instant::now());
    let start = if options.from_beginning {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let mut keep_going = || {
        !stop.load(Ordering::Relaxed)
            && options
                .idle_timeout
                .is_none_or(|idle| last_record.get().elapsed() < idle)
    };
    let mut print = |record: TopicRecord<'_>| -> Result<bool> {
        last_record.set(Instant::now());
        let text = if options.json {
            format!("{}\n", String::from_utf8_lossy(record.payload))
        } else {
            readable(record.payload, &record.agentwatch_headers)
        };
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`tail | head`): stop quietly, like other Unix tools.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(Error::io("writing to stdout", e)),
        }
        printed += 1;
        Ok(options.max_records.is_none_or(|max| printed < max))
    };
    if options.max_records == Some(0) {
        return Ok(0);
    }
    read_topic(
        &options.kafka,
        &options.topic,
        start,
        &mut keep_going,
        &mut print,
    )?;
    Ok(printed)
}

/// An alert or command in the demo's readable form; anything else (dead letters) as its
/// error headers and the start of its payload.
fn readable(payload: &[u8], headers: &[(&str, String)]) -> String {
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
    for (name, value) in headers {
        text.push_str(&format!(" {name}={value}"));
    }
    let preview: String = String::from_utf8_lossy(&payload[..payload.len().min(120)]).into();
    format!("{text} payload[{}]: {preview:?}\n", payload.len())
}
