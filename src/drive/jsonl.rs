//! Alerts and commands as JSON lines (a file, stdout), and optionally every event's
//! per-detector score as CSV: the [`Sink`] of `replay`.

use std::io::Write;
use std::time::Duration;

use super::{Published, Sink};
use crate::error::{Error, Result};
use crate::model::time::format_rfc3339;
use crate::pipeline::Outputs;

/// Header of the scores CSV.
pub const SCORES_HEADER: &str = "event_id,agent_id,time,detector,score";

/// Writes each alert as one JSON line followed by its commands; settling flushes.
pub struct JsonlSink<W, S = W> {
    output: W,
    scores: Option<S>,
    detector_ids: Vec<String>,
    json: Vec<u8>,
}

impl<W: Write, S: Write> JsonlSink<W, S> {
    /// Alerts and commands to `output`; score rows (without a header) to `scores`.
    pub fn new(output: W, scores: Option<S>) -> Self {
        JsonlSink {
            output,
            scores,
            detector_ids: Vec::new(),
            json: Vec::with_capacity(1024),
        }
    }

    /// The writers back.
    pub fn into_inner(self) -> (W, Option<S>) {
        (self.output, self.scores)
    }
}

impl<R: ?Sized, W: Write, S: Write> Sink<R> for JsonlSink<W, S> {
    fn publish(&mut self, batch: &Published<'_, '_>) -> Result<()> {
        write_outputs(batch.outputs, &mut self.output, &mut self.json)?;
        let Some(scores) = self.scores.as_mut() else {
            return Ok(());
        };
        if batch.end_of_input {
            return Ok(());
        }
        if self.detector_ids.is_empty() {
            self.detector_ids = batch.detectors.iter().map(|i| i.id.clone()).collect();
        }
        for row in &batch.outputs.scores {
            let (Some(event), Some(detector)) = (
                batch.events.get(row.event),
                self.detector_ids.get(row.detector),
            ) else {
                continue;
            };
            writeln!(
                scores,
                "{},{},{},{},{:.4}",
                csv_field(&event.event_id),
                csv_field(&event.agent_id),
                format_rfc3339(event.time_ms),
                detector,
                row.score
            )
            .map_err(|e| Error::io("writing scores", e))?;
        }
        Ok(())
    }

    fn settle(&mut self, _budget: Duration) -> Result<()> {
        self.output
            .flush()
            .map_err(|e| Error::io("flushing output", e))?;
        if let Some(scores) = self.scores.as_mut() {
            scores
                .flush()
                .map_err(|e| Error::io("flushing scores", e))?;
        }
        Ok(())
    }
}

fn write_outputs(outputs: &Outputs, out: &mut impl Write, json: &mut Vec<u8>) -> Result<()> {
    let mut write_line = |json: &mut Vec<u8>| {
        json.push(b'\n');
        out.write_all(json)
            .map_err(|e| Error::io("writing output", e))
    };
    for alert in &outputs.alerts {
        json.clear();
        serde_json::to_writer(&mut *json, alert)
            .map_err(|e| Error::io("encoding alert", e.into()))?;
        write_line(json)?;
        for id in &alert.commands {
            if let Some(command) = outputs.commands.iter().find(|c| &c.command_id == id) {
                json.clear();
                serde_json::to_writer(&mut *json, command)
                    .map_err(|e| Error::io("encoding command", e.into()))?;
                write_line(json)?;
            }
        }
    }
    Ok(())
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
