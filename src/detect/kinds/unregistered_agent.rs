//! `unregistered_agent`: activity from an agent the registry does not know, or knows
//! without an accountable owner.
//!
//! Zero Trust starts from identity: an agent nobody registered is a shadow agent (or a
//! stolen identity), and an agent nobody owns has nobody to answer its alerts. Silent
//! unless the registry is enforced (`[registry] enforce`, on by default with a registry
//! file): a registry topic that names a few agents says nothing about the others.

use serde::Deserialize;

use super::fact;
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::model::Anomaly;

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "unregistered_agent",
    guards: Aspect::Own,
    fleet: None,
    build: |text| {
        let _: Params = parse_params(text)?;
        Ok(Box::new(UnregisteredAgent))
    },
};

/// `[params]`: none yet; the table is accepted (empty) so instance files stay uniform.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The detector.
#[derive(Debug)]
pub struct UnregisteredAgent;

impl Detector for UnregisteredAgent {
    fn new_state(&self) -> KindState {
        KindState::Stateless
    }

    fn score(&self, obs: &Observation<'_>, _state: &mut KindState) -> Option<Finding> {
        if !obs.identity.registry?.enforces() {
            return None;
        }
        match obs.identity.record {
            None => Some(fact(Anomaly::Policy, Rule::NotInRegistry)),
            Some(record) if record.owner().is_none() => Some(fact(Anomaly::Policy, Rule::NoOwner)),
            Some(_) => None,
        }
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let event = obs.event;
        let what = if finding.rule == Some(Rule::NoOwner) {
            "is registered without an owner"
        } else {
            "is not in the agent registry"
        };
        format!(
            "{} {what}, yet it ran {} on {}{}; nobody is accountable for it",
            event.agent_id,
            event.action,
            event.system,
            event
                .owner
                .as_deref()
                .map(|o| format!(" (the event claims owner {o})"))
                .unwrap_or_default()
        )
    }
}
