//! Scoring detections against labelled incidents: recall per incident kind and false
//! alerts per 10,000 events. This is how the quality bar is measured, by tests and by
//! `replay --labels`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::time::parse_rfc3339;

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
}

impl Evaluation {
    /// Compares `alerts` with `incidents` over `events` processed events.
    pub fn new(incidents: &[Incident], alerts: &[AlertMark], events: u64) -> Result<Self> {
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

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::from("quality against labels:\n");
        for (kind, recall) in &self.per_kind {
            let _ = writeln!(
                out,
                "  recall {kind:<14} {:.3}  ({}/{})",
                recall.recall(),
                recall.detected,
                recall.incidents
            );
        }
        let _ = writeln!(out, "  recall overall        {:.3}", self.overall_recall());
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
    }
}
