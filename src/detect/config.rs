//! The instance file format (`detectors/<id>.toml`), as parsed before validation.

use serde::Deserialize;

use crate::model::{CommandAction, Severity};

/// One instance file, exactly as written. Unknown keys are errors (a typo in a threshold
/// name must not silently fall back to a default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InstanceSpec {
    pub id: String,
    pub kind: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub description: String,
    #[serde(default, rename = "match")]
    pub matcher: MatchSpec,
    /// Read by the kind itself (see [`parse_params`](super::parse_params)).
    #[serde(default)]
    #[allow(dead_code)]
    pub params: Option<toml::Table>,
    #[serde(default)]
    pub warmup: Warmup,
    /// False alerts allowed per agent per day (see `Instance::alert_p`).
    #[serde(default)]
    pub budget: Option<f64>,
    pub thresholds: ThresholdSpec,
    #[serde(default = "default_cooldown")]
    pub cooldown: String,
    #[serde(default)]
    pub response: Response,
}

fn enabled_by_default() -> bool {
    true
}

fn default_cooldown() -> String {
    "1h".into()
}

/// Which events an instance looks at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MatchSpec {
    pub actions: Vec<String>,
    pub systems: Vec<String>,
    pub exclude_actions: Vec<String>,
    pub exclude_systems: Vec<String>,
}

impl Default for MatchSpec {
    fn default() -> Self {
        MatchSpec {
            actions: vec!["*".into()],
            systems: vec!["*".into()],
            exclude_actions: Vec::new(),
            exclude_systems: Vec::new(),
        }
    }
}

/// How much an agent must have done before this instance may alert about it. Detectors
/// learn during warm-up; they just do not speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Warmup {
    /// Events the agent must have sent.
    pub events: u64,
    /// Hours of event time since the agent's first event.
    pub hours: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThresholdSpec {
    pub info: Option<f64>,
    pub low: Option<f64>,
    pub medium: Option<f64>,
    pub high: Option<f64>,
    pub critical: Option<f64>,
}

impl ThresholdSpec {
    pub fn pairs(&self) -> Vec<(Severity, f64)> {
        [
            (Severity::Info, self.info),
            (Severity::Low, self.low),
            (Severity::Medium, self.medium),
            (Severity::High, self.high),
            (Severity::Critical, self.critical),
        ]
        .into_iter()
        .filter_map(|(severity, score)| score.map(|s| (severity, s)))
        .collect()
    }
}

/// Score thresholds per severity, mildest first; the first one is the alert threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    levels: Vec<(Severity, f64)>,
}

impl Thresholds {
    /// Builds thresholds; the caller has checked they are ascending and in (0, 1].
    pub(super) fn new(levels: Vec<(Severity, f64)>) -> Self {
        Thresholds { levels }
    }

    /// The mildest severity this instance reports.
    pub fn mildest(&self) -> Option<Severity> {
        self.levels.first().map(|(severity, _)| *severity)
    }

    /// The score from which this instance alerts.
    pub fn alert_score(&self) -> f64 {
        self.levels.first().map_or(f64::INFINITY, |(_, s)| *s)
    }

    /// The severity of a finding with this score, if it is an alert at all.
    pub fn severity(&self, score: f64) -> Option<Severity> {
        self.levels
            .iter()
            .rev()
            .find(|(_, threshold)| score >= *threshold)
            .map(|(severity, _)| *severity)
    }
}

/// The responses an instance may trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Response {
    /// A command issued with every alert of this instance (`None`: alert only, and let
    /// accumulated risk decide).
    pub on_alert: Option<CommandAction>,
    /// The strongest command that risk escalation may reach through this instance.
    pub max: CommandAction,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            on_alert: None,
            max: CommandAction::SuspendAgent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_the_highest_level_reached() {
        let t = Thresholds::new(vec![(Severity::Low, 0.3), (Severity::High, 0.6)]);
        assert_eq!(t.severity(0.29), None);
        assert_eq!(t.severity(0.3), Some(Severity::Low));
        assert_eq!(t.severity(0.59), Some(Severity::Low));
        assert_eq!(t.severity(0.9), Some(Severity::High));
        assert_eq!(t.alert_score(), 0.3);
    }
}
