//! `credential_misuse`: credential hygiene.
//!
//! Credentials must be scoped to one agent, short-lived and never shared. Checks, each
//! selectable in `checks`:
//!
//! - `wrong_agent`: the registry issued the credential to another agent.
//! - `not_issued`: the agent's record lists its credentials and this one is not among
//!   them (nor issued to anyone else).
//! - `expired`: used after the registry's `expires_at`.
//! - `shared`: used by two or more agents, learned from the fleet's own traffic, so it
//!   works without a registry (for credentials the registry does not declare).
//! - `max_age`: older than `max_age` (from `issued_at`, or from its first use when the
//!   registry does not declare it): a permanent secret where a short-lived token belongs.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fact, format_age, DurationParam};
use crate::detect::{parse_params, KindSpec, KindState};
use crate::detect::{Aspect, Detector, Finding, Observation, Rule, Verdict};
use crate::model::time::{format_rfc3339, DAY_MS};
use crate::model::Anomaly;

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "credential_misuse",
    guards: Aspect::Credentials,
    fleet: None,
    build: |text| Ok(Box::new(CredentialMisuse::new(parse_params(text)?))),
};

/// One hygiene check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Issued to another agent.
    WrongAgent,
    /// Not among the agent's declared credentials.
    NotIssued,
    /// Used after expiry.
    Expired,
    /// Seen with another agent first.
    Shared,
    /// Older than `max_age`.
    MaxAge,
}

/// `[params]` of a `credential_misuse` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Which checks this instance runs.
    pub checks: Vec<Check>,
    /// Oldest acceptable credential, for the `max_age` check.
    pub max_age: DurationParam,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            checks: vec![
                Check::WrongAgent,
                Check::NotIssued,
                Check::Expired,
                Check::Shared,
            ],
            max_age: DurationParam(90 * DAY_MS),
        }
    }
}

/// The detector.
#[derive(Debug)]
pub struct CredentialMisuse {
    params: Params,
}

impl CredentialMisuse {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        CredentialMisuse { params }
    }

    fn runs(&self, check: Check) -> bool {
        self.params.checks.contains(&check)
    }

    /// The first check the event fails.
    fn failed(&self, obs: &Observation<'_>) -> Option<Check> {
        let credential = obs.event.credential_id.as_deref()?;
        let now = obs.event.time_ms;
        let identity = &obs.identity;
        let issued_to = identity.registry.and_then(|r| r.issued_to(credential));
        let agent = obs.event.agent_id.as_ref();
        if let Some(owner_agent) = issued_to {
            if owner_agent != agent && self.runs(Check::WrongAgent) {
                return Some(Check::WrongAgent);
            }
        } else if let Some(record) = identity.record {
            if !record.credentials.is_empty() && self.runs(Check::NotIssued) {
                return Some(Check::NotIssued);
            }
        }
        let declared = identity.record.and_then(|r| r.credential(credential));
        if let Some(expires) = declared.and_then(|c| c.expires_ms) {
            if now >= expires && self.runs(Check::Expired) {
                return Some(Check::Expired);
            }
        }
        let first_use = identity.credential_first_use;
        if issued_to.is_none()
            && self.runs(Check::Shared)
            && first_use.is_some_and(|(first, _)| first != agent)
        {
            return Some(Check::Shared);
        }
        if self.runs(Check::MaxAge) {
            let born = declared
                .map(|c| c.issued_ms)
                .or(first_use.map(|(_, at)| at));
            if born.is_some_and(|born| now - born > self.params.max_age.0) {
                return Some(Check::MaxAge);
            }
        }
        None
    }
}

impl Check {
    /// The rule a failed check reports.
    fn rule(self) -> Rule {
        match self {
            Check::WrongAgent => Rule::CredentialOfAnotherAgent,
            Check::NotIssued => Rule::CredentialNotIssued,
            Check::Expired => Rule::CredentialExpired,
            Check::Shared => Rule::CredentialShared,
            Check::MaxAge => Rule::CredentialTooOld,
        }
    }
}

/// The check behind one of this kind's findings.
fn check_of(finding: &Finding) -> Check {
    match finding.rule {
        Some(Rule::CredentialOfAnotherAgent) => Check::WrongAgent,
        Some(Rule::CredentialNotIssued) => Check::NotIssued,
        Some(Rule::CredentialExpired) => Check::Expired,
        Some(Rule::CredentialShared) => Check::Shared,
        _ => Check::MaxAge,
    }
}

impl Detector for CredentialMisuse {
    fn new_state(&self) -> KindState {
        KindState::Stateless
    }

    fn score(&self, obs: &Observation<'_>, _state: &mut KindState) -> Option<Finding> {
        let check = self.failed(obs)?;
        Some(fact(Anomaly::Policy, check.rule()))
    }

    fn learn(&self, _obs: &Observation<'_>, _state: &mut KindState, _verdict: Verdict) {}

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let event = obs.event;
        let credential = event.credential_id.as_deref().unwrap_or("?");
        let agent = &event.agent_id;
        let declared = obs.identity.record.and_then(|r| r.credential(credential));
        match check_of(finding) {
            Check::WrongAgent => format!(
                "{agent} used credential {credential}, which was issued to {}",
                obs.identity
                    .registry
                    .and_then(|r| r.issued_to(credential))
                    .unwrap_or("another agent")
            ),
            Check::NotIssued => format!(
                "{agent} used credential {credential}, which the registry never issued to it"
            ),
            Check::Expired => format!(
                "{agent} used credential {credential} {} after it expired at {}",
                format_age(event.time_ms - declared.and_then(|c| c.expires_ms).unwrap_or(0)),
                declared
                    .and_then(|c| c.expires_ms)
                    .map(format_rfc3339)
                    .unwrap_or_default()
            ),
            Check::Shared => format!(
                "{agent} used credential {credential}, which {} has used since {}: one credential, two agents",
                obs.identity.credential_first_use.map_or("another agent", |(a, _)| a),
                obs.identity
                    .credential_first_use
                    .map(|(_, at)| format_rfc3339(at))
                    .unwrap_or_default()
            ),
            Check::MaxAge => format!(
                "{agent} used credential {credential}, which is older than the {} allowed; rotate it",
                format_age(self.params.max_age.0)
            ),
        }
    }

    fn explain(
        &self,
        obs: &Observation<'_>,
        finding: &Finding,
        context: &mut BTreeMap<String, String>,
    ) {
        context.insert("rule".into(), finding.statistic.into());
        let Some(credential) = obs.event.credential_id.as_deref() else {
            return;
        };
        if let Some(agent) = obs.identity.registry.and_then(|r| r.issued_to(credential)) {
            context.insert("issued_to".into(), agent.into());
        }
        if let Some(declared) = obs.identity.record.and_then(|r| r.credential(credential)) {
            context.insert("issued_at".into(), format_rfc3339(declared.issued_ms));
            if let Some(expires) = declared.expires_ms {
                context.insert("expires_at".into(), format_rfc3339(expires));
            }
        }
        if let Some((first, at)) = obs.identity.credential_first_use {
            context.insert("first_used_by".into(), first.into());
            context.insert("first_used_at".into(), format_rfc3339(at));
        }
    }
}
