//! `agentwatch simulate`: labelled synthetic traffic as JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::AgentEventV1;
use crate::sim::{ApprovalTally, EventStream, SimConfig, Simulation};

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
    /// Legitimate changes per kind (records in the changes file).
    pub changes: BTreeMap<String, usize>,
    /// Approval records written, when an approvals file was asked for.
    pub approvals: Option<usize>,
}

impl SimulateReport {
    /// One line for the terminal: incidents and changes per kind.
    pub fn describe(&self) -> String {
        let list = |counts: &BTreeMap<String, usize>| {
            if counts.is_empty() {
                "none".to_owned()
            } else {
                let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
                parts.join(", ")
            }
        };
        let mut text = format!("incidents: {}", list(&self.incidents));
        if !self.changes.is_empty() {
            text += &format!("; changes: {}", list(&self.changes));
        }
        if let Some(approvals) = self.approvals {
            text += &format!("; approvals: {approvals}");
        }
        text
    }
}

/// Where `simulate` writes what it planned, besides the events.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulateFiles<'a> {
    /// The fleet's registry (TOML, or JSON for `.json`); also turns on policy attacks.
    pub registry: Option<&'a Path>,
    /// The labelled incidents (JSON).
    pub labels: Option<&'a Path>,
    /// The legitimate changes (JSON), which are not incidents.
    pub changes: Option<&'a Path>,
    /// The approval records (agent-approval v1 JSON lines) of the legitimate high-risk
    /// actions and of the approval attacks; also turns on those attacks.
    pub approvals: Option<&'a Path>,
}

/// Plans a simulation. With `files.registry`, the fleet's registry is written there
/// (TOML, or JSON for a `.json` path) and the identity and policy attacks are injected
/// too, since the registry is what makes them recognisable. With `files.approvals`, the
/// approval attacks are injected (see [`Simulation::with_approvals`]); their records
/// are written after the events, by [`write_approvals`].
pub fn plan_simulation(config: SimConfig, files: SimulateFiles<'_>) -> Result<Simulation> {
    let simulation = match files.registry {
        Some(path) => {
            let simulation = Simulation::with_policy(config);
            crate::identity::write_file(path, &simulation.registry())?;
            simulation
        }
        None => Simulation::new(config),
    };
    Ok(match files.approvals {
        Some(_) => simulation.with_approvals(),
        None => simulation,
    })
}

/// Writes the events of `config` to `output` and, if asked, the registry, labels,
/// changes and approvals to `files` (see [`plan_simulation`], [`write_plan`] and
/// [`write_approvals`]). Calls `progress` with the running event count every million
/// events.
pub fn simulate(
    config: SimConfig,
    files: SimulateFiles<'_>,
    output: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<SimulateReport> {
    let simulation = plan_simulation(config, files)?;
    let mut report = write_plan(&simulation, files)?;
    let mut tally = ApprovalTally::default();
    let events = simulation.events().inspect(|e| tally.observe(e));
    report.events = write_events(events, output, progress)?;
    if let Some(path) = files.approvals {
        report.approvals = Some(write_approvals(path, &simulation, &tally)?);
    }
    Ok(report)
}

/// Writes the approval records of `simulation` (see [`Simulation::approvals`]) to
/// `path` as JSON lines, once its events have been written and counted in `tally`.
/// Returns how many.
pub fn write_approvals(
    path: &Path,
    simulation: &Simulation,
    tally: &ApprovalTally,
) -> Result<usize> {
    let mut text = String::new();
    let records = simulation.approvals(tally);
    for record in &records {
        let line =
            serde_json::to_string(record).map_err(|e| Error::io("encoding approvals", e.into()))?;
        text += &line;
        text.push('\n');
    }
    std::fs::write(path, text)
        .map_err(|e| Error::io(format!("writing approvals {}", path.display()), e))?;
    Ok(records.len())
}

/// Writes the labels and the changes of `simulation` where `files` says (the registry
/// is written by [`plan_simulation`]), and reports what they hold.
pub fn write_plan(simulation: &Simulation, files: SimulateFiles<'_>) -> Result<SimulateReport> {
    let mut report = SimulateReport {
        agents: simulation.agents().len(),
        ..SimulateReport::default()
    };
    let labels = simulation.labels();
    for incident in &labels {
        *report.incidents.entry(incident.kind.clone()).or_default() += 1;
    }
    for change in simulation.changes() {
        *report.changes.entry(change.kind.clone()).or_default() += 1;
    }
    if let Some(path) = files.labels {
        write_json(path, &labels, "labels")?;
    }
    if let Some(path) = files.changes {
        write_json(path, simulation.changes(), "changes")?;
    }
    Ok(report)
}

fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T, what: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::io(format!("encoding {what}"), e.into()))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| Error::io(format!("writing {what} {}", path.display()), e))
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

    /// The default scenario must write exactly what earlier versions wrote, because
    /// tests, benchmarks and docs quote its numbers. The hashes are of
    /// `simulate --agents 30 --days 8 --seed 42 --registry r.toml --labels l.json`
    /// as written before scenarios existed.
    #[test]
    fn the_default_scenario_writes_what_earlier_versions_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let files = SimulateFiles {
            registry: Some(&dir.path().join("r.toml")),
            labels: Some(&dir.path().join("l.json")),
            changes: Some(&dir.path().join("c.json")),
            approvals: None,
        };
        let config = SimConfig {
            agents: 30,
            days: 8,
            seed: 42,
            ..SimConfig::default()
        };
        let mut events = Vec::new();
        let report = simulate(config, files, &mut events, &mut |_| {}).unwrap();
        assert_eq!(report.events, 85_922);
        assert!(report.changes.is_empty());
        let hash = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(
            hash(&events),
            "4d6e270e0a95cab8d14d07e16d1ea31c2ef345e865eb377b40f4c4ac026e43dd"
        );
        assert_eq!(
            hash(&read("l.json")),
            "de8f62012daefa9178010a8f6d5effa072b3bf717a09584488a8122f57bb7aa6"
        );
        assert_eq!(
            hash(&read("r.toml")),
            "f0a2b584f94ec0a96246118ac054eb9e6915aaf3f7e8ac913357d6cb47f9c081"
        );
        assert_eq!(read("c.json"), b"[]\n");
    }

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
