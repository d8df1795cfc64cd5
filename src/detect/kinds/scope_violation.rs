//! `scope_violation`: a system or action outside the agent's granted boundary.
//!
//! Least privilege as a fact check: the registry lists what each agent may touch
//! (`allowed_systems`, `allowed_actions`, exact names or `*` patterns) and anything
//! else is a violation on its first occurrence, with no baseline needed. A dimension the
//! record does not declare is not checked.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fact, format_list};
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::model::Anomaly;

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "scope_violation",
    guards: Aspect::Own,
    fleet: None,
    build: |text| {
        let _: Params = parse_params(text)?;
        Ok(Box::new(ScopeViolation))
    },
};

/// `[params]`: none; the boundary lives in the registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The detector.
#[derive(Debug)]
pub struct ScopeViolation;

impl Detector for ScopeViolation {
    fn new_state(&self) -> KindState {
        KindState::Stateless
    }

    fn score(&self, obs: &Observation<'_>, _state: &mut KindState) -> Option<Finding> {
        let record = obs.identity.record?;
        let system_out = record.allows_system(&obs.event.system) == Some(false);
        let action_out = record.allows_action(&obs.event.action) == Some(false);
        let rule = match (system_out, action_out) {
            (true, true) => Rule::SystemAndActionOutOfScope,
            (true, false) => Rule::SystemOutOfScope,
            (false, true) => Rule::ActionOutOfScope,
            (false, false) => return None,
        };
        Some(fact(Anomaly::Policy, rule))
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let event = obs.event;
        let spec = obs.identity.record.map(|r| &r.spec);
        let systems = spec
            .and_then(|s| s.allowed_systems.as_deref())
            .map(format_list)
            .unwrap_or_default();
        let actions = spec
            .and_then(|s| s.allowed_actions.as_deref())
            .map(format_list)
            .unwrap_or_default();
        let (system_out, action_out) = match finding.rule {
            Some(Rule::SystemAndActionOutOfScope) => (true, true),
            Some(Rule::ActionOutOfScope) => (false, true),
            _ => (true, false),
        };
        let mut parts = Vec::new();
        if system_out {
            parts.push(format!(
                "touched {}, outside its allowed systems ({systems})",
                event.system
            ));
        }
        if action_out {
            parts.push(format!(
                "ran {}, outside its allowed actions ({actions})",
                event.action
            ));
        }
        format!("{} {}", event.agent_id, parts.join(" and "))
    }

    fn explain(
        &self,
        obs: &Observation<'_>,
        finding: &Finding,
        context: &mut BTreeMap<String, String>,
    ) {
        context.insert("rule".into(), finding.statistic.into());
        if let Some(spec) = obs.identity.record.map(|r| &r.spec) {
            if let Some(systems) = &spec.allowed_systems {
                context.insert("allowed_systems".into(), format_list(systems));
            }
            if let Some(actions) = &spec.allowed_actions {
                context.insert("allowed_actions".into(), format_list(actions));
            }
        }
    }
}
