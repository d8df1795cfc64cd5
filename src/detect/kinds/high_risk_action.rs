//! `high_risk_action`: a high-risk action that arrives without a human's approval.
//!
//! The tiered trust model: routine actions flow, while deleting data, moving money or
//! changing permissions needs an `approval_id`. What counts as high-risk is the
//! instance's global list, plus the agent's own `high_risk_actions` from the registry,
//! plus `restricted_actions` for agents in the `restricted` trust tier. Works without a
//! registry (the global list alone). The default response is `require_approval`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fact;
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::identity::TrustTier;
use crate::model::Anomaly;
use crate::pattern::Pattern;

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "high_risk_action",
    guards: Aspect::Own,
    fleet: None,
    build: |text| Ok(Box::new(HighRiskAction::new(parse_params(text)?))),
};

/// `[params]` of a `high_risk_action` instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Actions that need approval from every agent (exact names or `*` patterns).
    pub actions: Vec<String>,
    /// Further actions that need approval from agents in the `restricted` tier.
    pub restricted_actions: Vec<String>,
}

/// The detector.
#[derive(Debug)]
pub struct HighRiskAction {
    actions: Vec<Pattern>,
    restricted: Vec<Pattern>,
}

impl HighRiskAction {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        let compile = |list: &[String]| list.iter().map(|p| Pattern::new(p)).collect();
        HighRiskAction {
            actions: compile(&params.actions),
            restricted: compile(&params.restricted_actions),
        }
    }

    /// Which list makes `obs`'s action high-risk, if any.
    fn listed_by(&self, obs: &Observation<'_>) -> Option<Rule> {
        let action = obs.event.action.as_ref();
        if self.actions.iter().any(|p| p.matches(action)) {
            return Some(Rule::GlobalHighRisk);
        }
        let record = obs.identity.record?;
        if record.is_high_risk(action) {
            Some(Rule::AgentHighRisk)
        } else if record.spec.tier == TrustTier::Restricted
            && self.restricted.iter().any(|p| p.matches(action))
        {
            Some(Rule::RestrictedTierHighRisk)
        } else {
            None
        }
    }
}

impl Detector for HighRiskAction {
    fn new_state(&self) -> KindState {
        KindState::Stateless
    }

    fn score(&self, obs: &Observation<'_>, _state: &mut KindState) -> Option<Finding> {
        if obs.event.approval_id.is_some() {
            return None;
        }
        let rule = self.listed_by(obs)?;
        Some(fact(Anomaly::Policy, rule))
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let why = match finding.rule {
            Some(Rule::AgentHighRisk) => "on the agent's own high-risk list",
            Some(Rule::RestrictedTierHighRisk) => "high-risk for restricted-tier agents",
            _ => "on the global high-risk list",
        };
        format!(
            "{} ran {} on {} without an approval_id; the action is {why} and needs a human's approval",
            obs.event.agent_id, obs.event.action, obs.event.system
        )
    }

    fn explain(
        &self,
        obs: &Observation<'_>,
        finding: &Finding,
        context: &mut BTreeMap<String, String>,
    ) {
        context.insert("rule".into(), finding.statistic.into());
        if let Some(record) = obs.identity.record {
            context.insert("tier".into(), record.spec.tier.as_str().into());
        }
    }
}
