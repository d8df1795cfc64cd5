//! Loading and validating detector instances.

use std::path::Path;

use super::config::{InstanceSpec, Response, Thresholds, Warmup};
use super::matcher::FieldMatcher;
use super::{catalogue, Aspect, Detector, FleetScope};
use crate::diagnostics::Diagnostics;
use crate::error::{Error, Result};
use crate::model::time::parse_duration_ms;
use crate::model::Event;

/// A running detector instance: its configuration plus the kind's code.
pub struct Instance {
    /// Instance id (unique; also the file stem by convention).
    pub id: String,
    /// Kind name.
    pub kind: &'static str,
    /// Stable hash of `id`, used to find this instance's slot in agent state.
    pub key: u32,
    /// What the instance is for.
    pub description: String,
    /// When it may start alerting about an agent.
    pub warmup: Warmup,
    /// Score thresholds per severity.
    pub thresholds: Thresholds,
    /// False alerts this instance may raise per agent per day (statistical kinds).
    pub budget: Option<f64>,
    /// What the kind's findings keep out of the shared baseline.
    pub guards: Aspect,
    /// The fleet-wide pattern the kind's findings can belong to.
    pub fleet: Option<FleetScope>,
    /// Minimum time between two alerts for the same agent.
    pub cooldown_ms: i64,
    /// Commands this instance may cause.
    pub response: Response,
    actions: FieldMatcher,
    systems: FieldMatcher,
    /// Both matchers select every name (the default).
    everything: bool,
    /// The kind's code, configured by the instance's `[params]`.
    pub detector: Box<dyn Detector>,
    /// The kind's fresh state is `Stateless`: an agent needs no slot for the instance
    /// until it alerts, calibrates or keeps something (see [`crate::state::EventSlots`]).
    pub born_stateless: bool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// True once the agent has done enough for this instance to speak about it.
    pub fn warmed_up(&self, baseline: &crate::baseline::Baseline, now_ms: i64) -> bool {
        baseline.events >= self.warmup.events && baseline.age_hours(now_ms) >= self.warmup.hours
    }

    /// The p-value at or below which a finding about this agent is an anomaly.
    ///
    /// With a `budget` (false alerts per agent per day) it is `budget / tests per day`,
    /// where the agent's test rate is its own (events per day for most kinds, active
    /// hours per day for `off_hours`): under the null a p-value
    /// is uniform, so each test alerts with probability `p*` and the agent's expected
    /// false alerts per day are `budget`, whether it makes ten calls a day or ten
    /// thousand. An exploratory agent's routine novelty then stays quiet, while a
    /// regular agent's first step outside its habits does not. Without a budget (policy
    /// kinds, whose findings are facts) the lowest severity threshold decides.
    pub fn alert_p(&self, baseline: &crate::baseline::Baseline, now_ms: i64) -> f64 {
        match self.budget {
            Some(budget) => budget / self.detector.tests_per_day(baseline, now_ms),
            None => crate::stats::p_from_score(self.thresholds.alert_score()),
        }
    }

    /// The factor an agent's p-values are scaled by before the budget applies: how much
    /// more often than nominal its ordinary events reach small p-values (see
    /// [`crate::baseline::Calibration`]). Only budgeted (statistical) instances are
    /// calibrated; a broken rule is a fact.
    pub fn calibration_factor(&self, calibration: &crate::baseline::Calibration) -> f64 {
        if self.budget.is_some() {
            calibration.inflation()
        } else {
            1.0
        }
    }

    /// True if this instance looks at `event`. Every instance is asked about every
    /// event, and most look at all of them: that answer is one branch, inlined.
    #[inline]
    pub fn matches(&self, event: &Event<'_>) -> bool {
        self.everything || self.matches_fields(event)
    }

    fn matches_fields(&self, event: &Event<'_>) -> bool {
        self.actions.matches(&event.action) && self.systems.matches(&event.system)
    }
}

/// The stable 32-bit key of an instance id (BLAKE3, little-endian prefix). Agent state
/// stores this instead of the id string to stay small; the loader rejects collisions.
pub fn instance_key(id: &str) -> u32 {
    let hash = blake3::hash(id.as_bytes());
    let bytes = hash.as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The enabled detector instances, in a stable order (by id).
#[derive(Debug, Default)]
pub struct DetectorSet {
    instances: Vec<Instance>,
}

/// The instance files shipped in `detectors/`, compiled in so that `demo` and `replay`
/// work from any directory.
macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../detectors/", $name)))),*]
    };
}
const BUILTIN: &[(&str, &str)] = builtin![
    "credential_age.toml",
    "credential_misuse.toml",
    "denied_burst.toml",
    "high_risk_action.toml",
    "new_system.toml",
    "off_hours.toml",
    "rate.toml",
    "scope_violation.toml",
    "unregistered_agent.toml",
    "volume.toml",
];

impl DetectorSet {
    /// The detectors shipped with agentwatch.
    pub fn builtin() -> Result<Self> {
        Self::from_sources(
            BUILTIN
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        )
    }

    /// Loads every `*.toml` in `dir`. Reports the problems of every file at once, with
    /// file and line (within one table of a file, the first: the TOML reader stops
    /// there), and refuses to build a set if there is any.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("reading detector directory {}", dir.display()), e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
                .path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::DetectorConfig(vec![format!(
                "{}: no *.toml detector files",
                dir.display()
            )]));
        }
        Self::from_sources(files)
    }

    /// Builds a set from `(file name, text)` pairs, collecting every problem.
    pub fn from_sources(files: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut problems = Vec::new();
        let mut instances: Vec<Instance> = Vec::new();
        let mut seen_ids: Vec<(String, String)> = Vec::new();
        for (file, text) in files {
            let mut found = Diagnostics::new(&file, &text);
            let built = build_instance(&mut found);
            if let Some((instance, _)) = &built {
                if let Some((_, other)) = seen_ids.iter().find(|(id, _)| *id == instance.id) {
                    found.at_key(
                        "id",
                        format_args!("id {:?} is already used by {other}", instance.id),
                    );
                } else if let Some(other) = instances.iter().find(|i| i.key == instance.key) {
                    found.at_key(
                        "id",
                        format_args!(
                            "id {:?} hashes like {:?}; rename one of them",
                            instance.id, other.id
                        ),
                    );
                }
            }
            let clean = found.is_empty();
            problems.extend(found.into_problems());
            let Some((instance, enabled)) = built.filter(|_| clean) else {
                continue;
            };
            seen_ids.push((instance.id.clone(), file.clone()));
            if enabled {
                instances.push(instance);
            }
        }
        if !problems.is_empty() {
            return Err(Error::DetectorConfig(problems));
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(DetectorSet { instances })
    }

    /// The enabled instances.
    pub fn iter(&self) -> std::slice::Iter<'_, Instance> {
        self.instances.iter()
    }

    /// How many instances are enabled.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True when no instance is enabled.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}

/// Builds one instance from its file, reporting every problem into `found`.
fn build_instance(found: &mut Diagnostics<'_>) -> Option<(Instance, bool)> {
    let text = found.text();
    let spec: InstanceSpec = match toml::from_str(text) {
        Ok(spec) => spec,
        Err(e) => {
            found.toml(&e);
            return None;
        }
    };
    if spec.id.is_empty()
        || !spec
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        found.at_key(
            "id",
            format_args!(
                "id {:?} must be non-empty lowercase letters, digits, '_' or '-'",
                spec.id
            ),
        );
    }
    if spec.description.trim().is_empty() {
        found.at_key(
            "description",
            "description must say what the detector is for",
        );
    }
    let cooldown_ms = parse_duration_ms(&spec.cooldown).unwrap_or_else(|| {
        found.at_key(
            "cooldown",
            format_args!(
                "cooldown {:?} is not a duration like 30m, 1h or 2d",
                spec.cooldown
            ),
        );
        0
    });
    if spec.warmup.hours < 0.0 || !spec.warmup.hours.is_finite() {
        found.at_key("hours", "warmup hours must be a non-negative number");
    }
    let levels = spec.thresholds.pairs();
    if levels.is_empty() {
        found.at_key(
            "thresholds",
            "thresholds need at least one of info, low, medium, high, critical",
        );
    }
    for (severity, score) in &levels {
        if !(*score > 0.0 && *score <= 1.0) {
            found.at_key(
                severity.as_str(),
                format_args!(
                    "threshold {} = {score} must be in (0, 1]",
                    severity.as_str()
                ),
            );
        }
    }
    if levels.windows(2).any(|w| w[0].1 >= w[1].1) {
        found.at_key(
            "thresholds",
            format_args!(
                "thresholds must increase with severity ({})",
                levels
                    .iter()
                    .map(|(s, v)| format!("{}={v}", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if let Some(budget) = spec.budget {
        if !(budget > 0.0 && budget <= 10.0) {
            found.at_key(
                "budget",
                format_args!("budget = {budget} must be false alerts per agent per day in (0, 10]"),
            );
        }
    }
    if let Some(on_alert) = spec.response.on_alert {
        if on_alert > spec.response.max {
            found.at_key(
                "on_alert",
                format_args!(
                    "response.on_alert {} is stronger than response.max {}",
                    on_alert.as_str(),
                    spec.response.max.as_str()
                ),
            );
        }
    }
    let detector = match catalogue::find(&spec.kind) {
        None => {
            found.at_key(
                "kind",
                format_args!(
                    "unknown kind {:?} (known: {})",
                    spec.kind,
                    catalogue::KINDS
                        .iter()
                        .map(|k| k.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            None
        }
        Some(kind) => match (kind.build)(text) {
            Ok(detector) => Some((kind, detector)),
            Err(e) => {
                found.toml(&e);
                None
            }
        },
    };
    let (kind, detector) = detector?;
    if !found.is_empty() {
        return None;
    }
    let actions = FieldMatcher::new(&spec.matcher.actions, &spec.matcher.exclude_actions);
    let systems = FieldMatcher::new(&spec.matcher.systems, &spec.matcher.exclude_systems);
    let instance = Instance {
        key: instance_key(&spec.id),
        id: spec.id,
        kind: kind.name,
        description: spec.description,
        warmup: spec.warmup,
        thresholds: Thresholds::new(levels),
        budget: spec.budget,
        guards: kind.guards,
        fleet: kind.fleet,
        cooldown_ms,
        response: spec.response,
        everything: actions == FieldMatcher::Everything && systems == FieldMatcher::Everything,
        actions,
        systems,
        born_stateless: matches!(detector.new_state(), crate::detect::KindState::Stateless),
        detector,
    };
    Some((instance, spec.enabled))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "vol"
kind = "volume"
description = "bytes moved"
[thresholds]
low = 0.5
high = 0.8
"#;

    fn load(files: &[(&str, &str)]) -> Result<DetectorSet> {
        DetectorSet::from_sources(
            files
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        )
    }

    #[test]
    fn an_instance_looks_at_the_events_its_match_selects() {
        let restricted = GOOD.replace(
            "[thresholds]",
            "[match]\nsystems = [\"crm\"]\nexclude_actions = [\"delete\"]\n[thresholds]",
        );
        let set = load(&[("vol.toml", GOOD)]).unwrap();
        let default = set.iter().next().unwrap();
        let set = load(&[("vol.toml", &restricted)]).unwrap();
        let only_crm = set.iter().next().unwrap();
        let limits = crate::model::Limits::default();
        let event = |action: &str, system: &str| {
            format!(
                r#"{{"event_id":"e","time":0,"agent_id":"a","action":"{action}","system":"{system}"}}"#
            )
        };
        for (action, system, selected) in [
            ("read", "crm", true),
            ("read", "mail", false),
            ("delete", "crm", false),
        ] {
            let line = event(action, system);
            let event = crate::model::decode_event(line.as_bytes(), &limits).unwrap();
            assert!(default.matches(&event), "{action} {system}");
            assert_eq!(only_crm.matches(&event), selected, "{action} {system}");
        }
    }

    #[test]
    fn builtin_detectors_load() {
        let set = DetectorSet::builtin().unwrap();
        let ids: Vec<_> = set.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "credential_age",
                "credential_misuse",
                "denied_burst",
                "high_risk_action",
                "new_system",
                "off_hours",
                "rate",
                "scope_violation",
                "unregistered_agent",
                "volume"
            ]
        );
    }

    #[test]
    fn reports_every_problem_with_file_and_line() {
        let bad_kind =
            "id = \"x\"\nkind = \"telepathy\"\ndescription = \"d\"\n[thresholds]\nlow = 0.5\n";
        let bad_thresholds = "id = \"y\"\nkind = \"rate\"\ndescription = \"d\"\ncooldown = \"soon\"\n[thresholds]\nlow = 0.8\nhigh = 0.4\n";
        let bad_param = "id = \"z\"\nkind = \"rate\"\ndescription = \"d\"\n[params]\nwindows = [\"1m\", \"10m\"]\nwindw = 3\n[thresholds]\nlow = 0.5\n";
        let bad_value = "id = \"v\"\nkind = \"new_system\"\ndescription = \"d\"\n[params]\nsensitive_weight = 3.0\n[thresholds]\nlow = 0.5\n";
        let unknown_key = "id = \"w\"\nkind = \"rate\"\ndescription = \"d\"\nthreshold = 1\n[thresholds]\nlow = 0.5\n";
        let err = load(&[
            ("a.toml", bad_kind),
            ("b.toml", bad_thresholds),
            ("c.toml", bad_param),
            ("d.toml", unknown_key),
            ("e.toml", GOOD),
            ("f.toml", bad_value),
        ])
        .unwrap_err();
        let Error::DetectorConfig(problems) = err else {
            panic!("wrong error {err}")
        };
        let text = problems.join("\n");
        assert!(
            text.contains("a.toml:2: unknown kind \"telepathy\""),
            "{text}"
        );
        assert!(text.contains("b.toml:4: cooldown \"soon\""), "{text}");
        assert!(
            text.contains("b.toml:5: thresholds must increase"),
            "{text}"
        );
        assert!(
            text.contains("c.toml:6:") && text.contains("windw"),
            "{text}"
        );
        assert!(
            text.contains("d.toml:4:") && text.contains("threshold"),
            "{text}"
        );
        assert!(text.contains("f.toml:5: 3 must be in (0, 1]"), "{text}");
        assert_eq!(problems.len(), 6, "{text}");
    }

    #[test]
    fn duplicate_ids_are_rejected_and_disabled_instances_skipped() {
        let err = load(&[("a.toml", GOOD), ("b.toml", GOOD)]).unwrap_err();
        assert!(err.to_string().contains("already used by a.toml"), "{err}");
        let disabled = GOOD.replace("description", "enabled = false\ndescription");
        assert!(load(&[("a.toml", &disabled)]).unwrap().is_empty());
    }
}
