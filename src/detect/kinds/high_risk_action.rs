//! `high_risk_action`: a high-risk action that arrives without a human's approval.
//!
//! The tiered trust model: routine actions flow, while deleting data, moving money or
//! changing permissions needs an `approval_id`. What counts as high-risk is the
//! instance's global list, plus the agent's own `high_risk_actions` from the registry,
//! plus `restricted_actions` for agents in the `restricted` trust tier. Works without a
//! registry (the global list alone). The default response is `require_approval`.
//!
//! With an approval source configured (see [`crate::approvals`]) the `approval_id` must
//! name a known approval for this agent, action and system, valid at the event's time
//! and not used up; the finding names the broken [`ApprovalRule`]. Uses are counted in
//! the instance's per-agent state ([`Ledger`]). Without one, any `approval_id` passes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fact, KindStateOf};
use crate::approvals::{check, ApprovalContext, ApprovalRule, Ledger, Request};
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::identity::TrustTier;
use crate::model::Anomaly;
use crate::pattern::PatternSet;

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
    actions: PatternSet,
    restricted: PatternSet,
}

impl HighRiskAction {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        HighRiskAction {
            actions: PatternSet::new(&params.actions),
            restricted: PatternSet::new(&params.restricted_actions),
        }
    }

    /// Which list makes `obs`'s action high-risk, if any.
    fn listed_by(&self, obs: &Observation<'_>) -> Option<Rule> {
        let action = obs.event.action.as_ref();
        if self.actions.matches(action) {
            return Some(Rule::GlobalHighRisk);
        }
        let record = obs.identity.record?;
        if record.is_high_risk(action) {
            Some(Rule::AgentHighRisk)
        } else if record.spec.tier == TrustTier::Restricted && self.restricted.matches(action) {
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

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let Some(approvals) = obs.identity.approvals else {
            // No approval source: any approval_id passes (the warned-about default).
            if obs.event.approval_id.is_some() {
                return None;
            }
            self.listed_by(obs)?;
            return Some(fact(Anomaly::Policy, Rule::ApprovalMissing));
        };
        self.listed_by(obs)?;
        verify(obs, approvals, state).map(|(rule, uses)| {
            let mut finding = fact(Anomaly::Policy, rule.into());
            if rule == ApprovalRule::ApprovalExhausted {
                finding.observed = f64::from(uses) + 1.0;
                finding.unit = "uses";
            }
            finding
        })
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let why = match self.listed_by(obs) {
            Some(Rule::AgentHighRisk) => "on the agent's own high-risk list",
            Some(Rule::RestrictedTierHighRisk) => "high-risk for restricted-tier agents",
            _ => "on the global high-risk list",
        };
        let rule = approval_rule(finding);
        let named = match (rule, obs.event.approval_id.as_deref()) {
            (ApprovalRule::ApprovalMissing, _) | (_, None) => String::new(),
            (_, Some(id)) => format!(" ({id})"),
        };
        format!(
            "{} ran {} on {} {}{named}; the action is {why} and needs a human's approval",
            obs.event.agent_id,
            obs.event.action,
            obs.event.system,
            rule.explain()
        )
    }

    fn explain(
        &self,
        obs: &Observation<'_>,
        finding: &Finding,
        context: &mut BTreeMap<String, String>,
    ) {
        // The typed rule by name (`approval_missing`, ...), as SIEM rules match on it.
        context.insert("rule".into(), approval_rule(finding).as_str().into());
        if let Some(listed) = self.listed_by(obs) {
            context.insert("listed_by".into(), listed.name().into());
        }
        if let Some(record) = obs.identity.record {
            context.insert("tier".into(), record.spec.tier.as_str().into());
        }
        let Some(id) = obs.event.approval_id.as_deref() else {
            return;
        };
        context.insert("approval.id".into(), id.into());
        let Some(approval) = obs.identity.approvals.and_then(|a| a.store.get(id)) else {
            return;
        };
        let spec = &approval.spec;
        let mut put = |key: &str, value: String| {
            context.insert(format!("approval.{key}"), value);
        };
        put("agent_id", spec.agent_id.clone());
        put("approved_by", spec.approved_by.clone());
        put("actions", spec.actions.join(","));
        put(
            "systems",
            spec.systems.as_ref().map_or("*".into(), |s| s.join(",")),
        );
        put("issued_at", spec.issued_at.clone());
        put("expires_at", spec.expires_at.clone());
        put("max_uses", approval.max_uses.to_string());
        if finding.unit == "uses" {
            put("use", format!("{}", finding.observed));
        }
        if let Some(request) = &spec.request_id {
            put("request_id", request.clone());
        }
    }
}

/// The approval rule a finding of this kind broke.
fn approval_rule(finding: &Finding) -> ApprovalRule {
    finding
        .rule
        .and_then(|rule| ApprovalRule::from_name(rule.name()))
        .unwrap_or(ApprovalRule::ApprovalMissing)
}

/// Checks the event's approval. `None`: it passes (its use is counted), or it is held
/// to wait for an approval that has not arrived yet. `Some((rule, uses))`: the rule it
/// breaks, and how often the approval had been used.
fn verify(
    obs: &Observation<'_>,
    approvals: ApprovalContext<'_>,
    state: &mut KindState,
) -> Option<(ApprovalRule, u32)> {
    let event = obs.event;
    let Some(id) = event.approval_id.as_deref() else {
        return Some((ApprovalRule::ApprovalMissing, 0));
    };
    let store = approvals.store;
    let Some(approval) = store.get(id) else {
        let wait = approvals.may_hold && store.grace_ms() > 0;
        if wait && Ledger::of(state).hold(event, id) {
            return None;
        }
        return Some((ApprovalRule::ApprovalUnknown, 0));
    };
    let ledger = Ledger::of(state);
    let uses = ledger.uses(id);
    let request = Request {
        agent_id: &event.agent_id,
        action: &event.action,
        system: &event.system,
        time_ms: event.time_ms,
    };
    match check(approval, request, uses, store.grace_ms()) {
        Ok(()) => {
            ledger.record_use(id, approval.expires_ms, event.time_ms);
            None
        }
        Err(rule) => Some((rule, uses)),
    }
}
