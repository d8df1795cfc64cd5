//! Scoring detections against labelled incidents: recall per incident kind, false
//! alerts per 10,000 events and per agent-day, and commands on healthy agents. This is
//! how the quality bar is measured, by tests and by `replay --labels`.

mod agent_days;
mod commands;

pub use agent_days::AgentDays;
pub use commands::{healthy_commands, CommandMark, HealthyCommands};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::time::parse_rfc3339;
use crate::model::CommandAction;

/// An alert counts for an incident if it is raised up to this long after the incident's
/// last event (a window-based detector may need its window to fill).
pub const GRACE_MS: i64 = 30 * 60_000;

/// One labelled incident (the labels file is a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The victim agent.
    pub agent_id: String,
    /// What kind of incident (`exfiltration`, `first_access`, ...).
    pub kind: String,
    /// First event of the incident (RFC 3339).
    pub start: String,
    /// Last event of the incident (RFC 3339).
    pub end: String,
    /// The detector instance that must catch it; when set, alerts from other detectors
    /// do not count towards this incident (they still are not false alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
}

/// Reads a labels file.
pub fn load_labels(path: &Path) -> Result<Vec<Incident>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading labels {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidInput {
        context: format!("labels file {}", path.display()),
        detail: e.to_string(),
    })
}

/// The minimum an evaluation needs to know about an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMark {
    /// The agent.
    pub agent_id: String,
    /// Event time of the alert.
    pub time_ms: i64,
    /// The detector instance.
    pub detector: String,
}

/// Recall for one incident kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindRecall {
    /// Labelled incidents.
    pub incidents: usize,
    /// Incidents with at least one alert on the agent during the incident (+ grace).
    pub detected: usize,
}

impl KindRecall {
    /// detected / incidents (1 when there are none).
    pub fn recall(&self) -> f64 {
        if self.incidents == 0 {
            1.0
        } else {
            self.detected as f64 / self.incidents as f64
        }
    }
}

/// Everything a run produced that an evaluation looks at, beyond its alerts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// Events processed.
    pub events: u64,
    /// Distinct (agent, day) pairs with events, if counted.
    pub agent_days: Option<u64>,
    /// The commands issued, if known.
    pub commands: Option<&'a [CommandMark]>,
}

/// The result of comparing alerts with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Recall per incident kind.
    pub per_kind: BTreeMap<String, KindRecall>,
    /// Alerts that match no incident, per detector.
    pub false_by_detector: BTreeMap<String, u64>,
    /// All alerts.
    pub alerts: u64,
    /// Events processed.
    pub events: u64,
    /// Incidents that no alert matched (for tuning).
    pub missed: Vec<Incident>,
    /// Distinct (agent, day) pairs with events, when the run counted them.
    pub agent_days: Option<u64>,
    /// Commands on agents without any labelled incident, per agent and action, when the
    /// run's commands are known.
    pub healthy_commands: Option<HealthyCommands>,
}

impl Evaluation {
    /// Compares `alerts` with `incidents` over `events` processed events.
    pub fn new(incidents: &[Incident], alerts: &[AlertMark], events: u64) -> Result<Self> {
        Self::of(
            incidents,
            alerts,
            Observed {
                events,
                ..Observed::default()
            },
        )
    }

    /// Compares `alerts` and what else was `observed` with `incidents`.
    pub fn of(
        incidents: &[Incident],
        alerts: &[AlertMark],
        observed: Observed<'_>,
    ) -> Result<Self> {
        let events = observed.events;
        let mut spans = Vec::with_capacity(incidents.len());
        for incident in incidents {
            let parse = |text: &str| {
                parse_rfc3339(text).ok_or_else(|| Error::InvalidInput {
                    context: "labels".into(),
                    detail: format!("incident on {} has a bad time {text:?}", incident.agent_id),
                })
            };
            spans.push((parse(&incident.start)?, parse(&incident.end)? + GRACE_MS));
        }
        let matches = |alert: &AlertMark, (incident, (start, end)): (&Incident, &(i64, i64))| {
            incident.agent_id == alert.agent_id && (*start..=*end).contains(&alert.time_ms)
        };
        let mut per_kind: BTreeMap<String, KindRecall> = BTreeMap::new();
        let mut missed = Vec::new();
        for (incident, span) in incidents.iter().zip(&spans) {
            let entry = per_kind.entry(incident.kind.clone()).or_default();
            entry.incidents += 1;
            let caught = alerts.iter().any(|a| {
                matches(a, (incident, span))
                    && incident.detector.as_ref().is_none_or(|d| *d == a.detector)
            });
            if caught {
                entry.detected += 1;
            } else {
                missed.push(incident.clone());
            }
        }
        let mut false_by_detector: BTreeMap<String, u64> = BTreeMap::new();
        for alert in alerts {
            if !incidents
                .iter()
                .zip(&spans)
                .any(|pair| matches(alert, pair))
            {
                *false_by_detector.entry(alert.detector.clone()).or_default() += 1;
            }
        }
        Ok(Evaluation {
            per_kind,
            false_by_detector,
            alerts: alerts.len() as u64,
            events,
            missed,
            agent_days: observed.agent_days,
            healthy_commands: observed
                .commands
                .map(|commands| healthy_commands(incidents, commands)),
        })
    }

    /// Recall over all incidents.
    pub fn overall_recall(&self) -> f64 {
        let (detected, total) = self
            .per_kind
            .values()
            .fold((0, 0), |(d, t), k| (d + k.detected, t + k.incidents));
        if total == 0 {
            1.0
        } else {
            detected as f64 / total as f64
        }
    }

    /// Alerts matching no incident.
    pub fn false_alerts(&self) -> u64 {
        self.false_by_detector.values().sum()
    }

    /// False alerts per 10,000 events.
    pub fn false_per_10k(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.false_alerts() as f64 * 10_000.0 / self.events as f64
        }
    }

    /// False alerts per agent-day, when agent-days were counted.
    pub fn false_per_agent_day(&self) -> Option<f64> {
        self.agent_days
            .map(|days| self.false_alerts() as f64 / days.max(1) as f64)
    }

    /// Healthy agents (no labelled incident) that received any of `actions`, sorted.
    /// Empty when the run's commands are unknown.
    pub fn healthy_agents_with(&self, actions: &[CommandAction]) -> Vec<&str> {
        self.healthy_commands
            .iter()
            .flatten()
            .filter(|(_, got)| actions.iter().any(|a| got.contains_key(a)))
            .map(|(agent, _)| agent.as_str())
            .collect()
    }

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::from("quality against labels:\n");
        for (kind, recall) in &self.per_kind {
            let _ = writeln!(
                out,
                "  recall {kind:<21} {:.3}  ({}/{})",
                recall.recall(),
                recall.detected,
                recall.incidents
            );
        }
        let _ = writeln!(
            out,
            "  recall overall               {:.3}",
            self.overall_recall()
        );
        let _ = writeln!(
            out,
            "  false alerts          {} of {} alerts = {:.3} per 10,000 events",
            self.false_alerts(),
            self.alerts,
            self.false_per_10k()
        );
        for (detector, count) in &self.false_by_detector {
            let _ = writeln!(out, "    {detector:<20} {count}");
        }
        if let (Some(days), Some(rate)) = (self.agent_days, self.false_per_agent_day()) {
            let _ = writeln!(
                out,
                "  false alerts per agent-day {rate:.4}  ({days} agent-days)"
            );
        }
        if self.healthy_commands.is_some() {
            let tiers: [(&str, &[CommandAction]); 2] = [
                (
                    "revoke_credential/suspend_agent",
                    &[CommandAction::RevokeCredential, CommandAction::SuspendAgent],
                ),
                ("require_approval", &[CommandAction::RequireApproval]),
            ];
            for (name, actions) in tiers {
                let agents = self.healthy_agents_with(actions);
                let shown: Vec<&str> = agents.iter().take(8).copied().collect();
                let list = match (shown.is_empty(), agents.len() > shown.len()) {
                    (true, _) => String::new(),
                    (false, more) => {
                        format!(" ({}{})", shown.join(", "), if more { ", ..." } else { "" })
                    }
                };
                let _ = writeln!(out, "  healthy agents with {name}: {}{list}", agents.len());
            }
        }
        for incident in self.missed.iter().take(10) {
            let _ = writeln!(
                out,
                "  missed {} on {} at {}",
                incident.kind, incident.agent_id, incident.start
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(agent: &str, kind: &str) -> Incident {
        Incident {
            agent_id: agent.into(),
            kind: kind.into(),
            start: "2026-01-05T10:00:00Z".into(),
            end: "2026-01-05T10:10:00Z".into(),
            detector: None,
        }
    }

    fn alert(agent: &str, time: &str) -> AlertMark {
        AlertMark {
            agent_id: agent.into(),
            time_ms: parse_rfc3339(time).unwrap(),
            detector: "d".into(),
        }
    }

    #[test]
    fn counts_detections_within_grace_and_false_alerts_elsewhere() {
        let incidents = [incident("a", "exfiltration"), incident("b", "exfiltration")];
        let alerts = [
            alert("a", "2026-01-05T10:35:00Z"),
            alert("b", "2026-01-05T10:41:00Z"),
            alert("c", "2026-01-05T10:05:00Z"),
        ];
        let eval = Evaluation::new(&incidents, &alerts, 20_000).unwrap();
        assert_eq!(
            eval.per_kind["exfiltration"],
            KindRecall {
                incidents: 2,
                detected: 1
            }
        );
        assert_eq!(eval.false_alerts(), 2);
        assert!((eval.false_per_10k() - 1.0).abs() < 1e-12);
        assert_eq!(eval.missed.len(), 1);
        assert!(eval.render().contains("recall exfiltration"));
        assert_eq!(eval.false_per_agent_day(), None);
        assert!(!eval.render().contains("healthy agents"));
    }

    fn command(agent: &str, action: CommandAction) -> CommandMark {
        CommandMark {
            agent_id: agent.into(),
            time_ms: 0,
            action,
            detector: "d".into(),
            system: None,
        }
    }

    #[test]
    fn names_healthy_agents_that_were_commanded_and_rates_per_agent_day() {
        let incidents = [incident("a", "exfiltration")];
        let alerts = [
            alert("b", "2026-01-05T10:05:00Z"),
            alert("c", "2026-01-06T10:05:00Z"),
        ];
        let commands = [
            command("a", CommandAction::SuspendAgent),
            command("b", CommandAction::RevokeCredential),
            command("b", CommandAction::RevokeCredential),
            command("c", CommandAction::RequireApproval),
        ];
        let observed = Observed {
            events: 1_000,
            agent_days: Some(8),
            commands: Some(&commands),
        };
        let eval = Evaluation::of(&incidents, &alerts, observed).unwrap();
        let strong = [CommandAction::RevokeCredential, CommandAction::SuspendAgent];
        assert_eq!(eval.healthy_agents_with(&strong), ["b"]);
        assert_eq!(
            eval.healthy_agents_with(&[CommandAction::RequireApproval]),
            ["c"]
        );
        let healthy = eval.healthy_commands.as_ref().unwrap();
        assert_eq!(healthy["b"][&CommandAction::RevokeCredential], 2);
        assert_eq!(eval.false_per_agent_day(), Some(0.25));
        let report = eval.render();
        assert!(
            report.contains("false alerts per agent-day 0.2500  (8 agent-days)"),
            "{report}"
        );
        assert!(
            report.contains("healthy agents with revoke_credential/suspend_agent: 1 (b)"),
            "{report}"
        );
        assert!(
            report.contains("healthy agents with require_approval: 1 (c)"),
            "{report}"
        );
    }
}
