//! `agentwatch simulate`: labelled synthetic traffic as JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::AgentEventV1;
use crate::sim::{EventStream, SimConfig, Simulation};

/// Presents generated events as newline-delimited JSON, so that `demo`, benches and
/// tests feed the engine through exactly the decode path that files and Kafka use.
pub struct JsonLinesReader<I> {
    events: I,
    line: Vec<u8>,
    position: usize,
}

/// The events of a simulation as JSON lines.
pub type SimReader<'a> = JsonLinesReader<EventStream<'a>>;

impl<'a> SimReader<'a> {
    /// Streams the events of `simulation`.
    pub fn simulation(simulation: &'a Simulation) -> Self {
        JsonLinesReader::new(simulation.events())
    }
}

impl<I: Iterator<Item = AgentEventV1>> JsonLinesReader<I> {
    /// Streams `events`.
    pub fn new(events: I) -> Self {
        JsonLinesReader {
            events,
            line: Vec::with_capacity(512),
            position: 0,
        }
    }
}

impl<I: Iterator<Item = AgentEventV1>> Read for JsonLinesReader<I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<I: Iterator<Item = AgentEventV1>> BufRead for JsonLinesReader<I> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position >= self.line.len() {
            self.line.clear();
            self.position = 0;
            if let Some(event) = self.events.next() {
                serde_json::to_writer(&mut self.line, &event)?;
                self.line.push(b'\n');
            }
        }
        Ok(&self.line[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.line.len());
    }
}

/// What `simulate` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulateReport {
    /// Events written.
    pub events: u64,
    /// Agents simulated.
    pub agents: usize,
    /// Incidents per kind.
    pub incidents: BTreeMap<String, usize>,
}

/// Plans a simulation. With `registry`, the fleet's registry is written there (TOML, or
/// JSON for a `.json` path) and the identity and policy attacks are injected too, since
/// the registry is what makes them recognisable.
pub fn plan_simulation(config: SimConfig, registry: Option<&Path>) -> Result<Simulation> {
    let Some(path) = registry else {
        return Ok(Simulation::new(config));
    };
    let simulation = Simulation::with_policy(config);
    crate::identity::write_file(path, &simulation.registry())?;
    Ok(simulation)
}

/// Writes the events of `config` to `output` and, if asked, the labels to `labels` and
/// the fleet's registry to `registry` (see [`plan_simulation`]). Calls `progress` with
/// the running event count every million events.
pub fn simulate(
    config: SimConfig,
    registry: Option<&Path>,
    output: &mut dyn Write,
    labels: Option<&Path>,
    progress: &mut dyn FnMut(u64),
) -> Result<SimulateReport> {
    let simulation = plan_simulation(config, registry)?;
    let mut report = SimulateReport {
        agents: simulation.agents().len(),
        ..SimulateReport::default()
    };
    for incident in simulation.labels() {
        *report.incidents.entry(incident.kind).or_default() += 1;
    }
    if let Some(path) = labels {
        let text = serde_json::to_string_pretty(&simulation.labels())
            .map_err(|e| Error::io("encoding labels", e.into()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::io(format!("writing labels {}", path.display()), e))?;
    }
    report.events = write_events(simulation.events(), output, progress)?;
    Ok(report)
}

/// Writes `events` as JSON lines, calling `progress` every million events. Returns how
/// many were written.
pub fn write_events(
    events: impl Iterator<Item = AgentEventV1>,
    output: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut reader = JsonLinesReader::new(events);
    let mut written = 0u64;
    loop {
        let chunk = reader
            .fill_buf()
            .map_err(|e| Error::io("generating events", e))?;
        if chunk.is_empty() {
            break;
        }
        output
            .write_all(chunk)
            .map_err(|e| Error::io("writing events", e))?;
        let n = chunk.len();
        reader.consume(n);
        written += 1;
        if written % 1_000_000 == 0 {
            progress(written);
        }
    }
    output.flush().map_err(|e| Error::io("writing events", e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decode_event, Limits};

    #[test]
    fn every_simulated_line_decodes() {
        let simulation = Simulation::new(SimConfig {
            agents: 5,
            days: 1,
            seed: 1,
            attacks: false,
            ..SimConfig::default()
        });
        let reader = SimReader::simulation(&simulation);
        let mut count = 0;
        for line in reader.split(b'\n') {
            let line = line.unwrap();
            decode_event(&line, &Limits::default()).unwrap();
            count += 1;
        }
        assert!(count > 100, "{count}");
    }
}
