//! From findings to alerts and commands: warm-up, thresholds, cooldown, severity, risk
//! and response tiers. The engine applies these, not the detectors, so every kind
//! behaves the same way and a tuning change touches one place.

use std::collections::BTreeMap;

use crate::detect::{Finding, FleetScope, Instance, Observation};
use crate::model::time::{format_rfc3339, Timestamp, DAY_MS, HOUR_MS};
use crate::model::{
    Alert, Command, CommandAction, CommandReason, DetectorRef, Evidence, FleetScopeEvidence,
    Severity, SCHEMA_VERSION,
};
use crate::state::{DetectorSlot, ResponseState, RiskState};

use super::ids::{alert_id, command_id, fleet_alert_id};

/// Engine-wide response policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Half-life of accumulated risk.
    pub risk_half_life_ms: i64,
    /// Risk added by an alert of each severity (info, low, medium, high, critical).
    pub severity_weight: [f64; 5],
    /// Risk at which each command becomes due (require_approval, revoke, suspend).
    pub tier_risk: [f64; 3],
    /// Expiry of a first command of each action.
    pub base_expiry_ms: [i64; 3],
    /// Longest expiry, however often an agent offends.
    pub max_expiry_ms: i64,
    /// `issued_by` on commands.
    pub issued_by: String,
    /// Severity caps by magnitude, ascending: a finding whose magnitude (observed over
    /// expected) is below `ratio` is at most `severity`. A p-value says how *sure* a
    /// deviation is, not how *big*: after an hour a doubled pace is beyond doubt, yet it
    /// is a job change far more often than an attack, so it may alert but must not
    /// revoke a credential. Risk, and so commands, follow severity.
    pub magnitude_caps: Vec<(f64, Severity)>,
    /// Age of a baseline before a statistical finding may do more than ask for approval.
    /// A count or size model that has not yet seen a whole week has not seen the
    /// agent's busiest day: its tail is an extrapolation, and an agent's first heavy
    /// day after a quiet one reads as p = 1e-30. Such a finding still alerts, with its
    /// severity, and asks a human; revoking or suspending waits for a baseline that
    /// covers a weekly cycle and holds [`Policy::mature_after_events`]. Policy findings
    /// (facts, not estimates) are not affected.
    pub mature_after_ms: i64,
    /// Events a baseline must hold, besides its age, before a statistical finding may
    /// do more than ask for approval: a week is not enough history for a slow agent. A
    /// devops agent at ten calls a day is a week old at 86 events; on an independently
    /// generated change fleet its first incident burst read as p = 1e-17 against the
    /// count distribution of a handful of quiet days, and revoked a healthy credential.
    ///
    /// The figure is a rule of thumb, not a derived bound: the tail tests take over from
    /// the data at the agent's 99th percentile (`rate`'s windows and runs, `volume`'s
    /// transfers), and a thousand events are the fewest that put about ten observations
    /// above it; the windows and runs they form are fewer still, and the negative
    /// binomial, the window t-test and the Beta rates of `new_system` and
    /// `denied_burst` have no sharper resolution than the events behind them. On the
    /// eighteen held-out sets it changed no command on an attacked agent.
    ///
    /// The cost: until then nothing a statistical detector finds escalates, and what
    /// does not escalate is learned once its episode ends, as in an agent's first
    /// week. At ten events a day that is about a hundred days in which a person, asked
    /// for approval, is the only check on what the slow agent's baseline absorbs.
    pub mature_after_events: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            risk_half_life_ms: 6 * HOUR_MS,
            severity_weight: [0.0, 1.0, 2.0, 4.0, 8.0],
            tier_risk: [4.0, 8.0, 16.0],
            base_expiry_ms: [HOUR_MS, 4 * HOUR_MS, 24 * HOUR_MS],
            max_expiry_ms: 30 * DAY_MS,
            issued_by: "agentwatch".into(),
            magnitude_caps: vec![(3.0, Severity::Medium), (10.0, Severity::High)],
            mature_after_ms: 7 * DAY_MS,
            mature_after_events: 1_000,
        }
    }
}

impl Policy {
    fn weight(&self, severity: Severity) -> f64 {
        self.severity_weight[severity as usize]
    }

    /// The severity of an anomalous finding: its score's band (the mildest band when
    /// the instance's budget let a finding through below every band), capped by its
    /// magnitude.
    pub fn severity(&self, instance: &Instance, finding: &Finding) -> Option<Severity> {
        let banded = instance
            .thresholds
            .severity(finding.score())
            .or_else(|| instance.budget.and(instance.thresholds.mildest()))?;
        let cap = self
            .magnitude_caps
            .iter()
            .find(|(ratio, _)| finding.magnitude < *ratio)
            .map_or(Severity::Critical, |(_, severity)| *severity);
        Some(banded.min(cap))
    }

    /// The strongest command a finding of `instance` about an agent with `baseline` may
    /// lead to: the instance's own ceiling, and no more than an approval while a
    /// statistical instance's baseline is younger than [`Policy::mature_after_ms`] or
    /// holds fewer than [`Policy::mature_after_events`] events, or
    /// while the finding is part of a change its detector is learning
    /// ([`Finding::learning`]); never more than the finding's own
    /// [`Finding::response_cap`].
    ///
    /// A detector that is learning has already seen the agent keep up the new
    /// behaviour; each further finding of the same episode is the same evidence again,
    /// not new evidence, and a job change (sizes three times, for good) keeps a
    /// heavy-tailed agent's largest transfers crossing for days. Stacked, such findings
    /// revoked a healthy agent's credential on an independently generated change
    /// fleet. They still alert and ask a human; revoking or suspending needs the
    /// episode's first finding, or another detector's.
    fn ceiling(
        &self,
        instance: &Instance,
        baseline: &crate::baseline::Baseline,
        finding: &Finding,
        now_ms: i64,
    ) -> CommandAction {
        let immature = !self.is_mature(baseline, now_ms);
        let max = if instance.budget.is_some() && (immature || finding.learning) {
            instance.response.max.min(CommandAction::RequireApproval)
        } else {
            instance.response.max
        };
        finding.response_cap.map_or(max, |cap| max.min(cap))
    }

    /// Whether a statistical finding about an agent with `baseline` may do more than ask
    /// for approval at `now_ms`: its baseline is at least [`Policy::mature_after_ms`] old
    /// and holds [`Policy::mature_after_events`].
    pub fn is_mature(&self, baseline: &crate::baseline::Baseline, now_ms: i64) -> bool {
        now_ms - baseline.first_seen_ms >= self.mature_after_ms
            && baseline.events >= self.mature_after_events
    }

    /// Risk at which `action` becomes due.
    fn tier_risk_of(&self, action: CommandAction) -> f64 {
        self.tier_risk[action as usize]
    }

    /// The strongest action whose risk tier `risk` has reached.
    fn tier_for(&self, risk: f64) -> Option<CommandAction> {
        CommandAction::ALL
            .iter()
            .zip(self.tier_risk)
            .rev()
            .find(|(_, threshold)| risk >= *threshold)
            .map(|(action, _)| *action)
    }

    /// Expiry for the `nth` (1-based) command of `action`: doubles per repeat, capped.
    fn expiry_ms(&self, action: CommandAction, nth: u32) -> i64 {
        let base = self.base_expiry_ms[action as usize];
        let doublings = nth.saturating_sub(1).min(20);
        base.saturating_mul(1 << doublings).min(self.max_expiry_ms)
    }
}

/// The mutable parts of an agent's state that a decision touches.
pub(super) struct AgentDecisionState<'a> {
    pub slot: &'a mut DetectorSlot,
    pub risk: &'a mut RiskState,
    pub response: &'a mut ResponseState,
}

/// Decides what an anomalous finding of `severity` ([`Policy::severity`]) becomes: one
/// the engine flagged, so past the instance's warm-up or a broken rule (the engine's
/// gate is the one place that judges that). Returns `None` while the finding falls in
/// the cooldown of an earlier alert (then counted in `suppressed`, reported on the next
/// alert). Command expiry counts from the later of event time and `processing_ms` (see
/// `Engine::set_processing_ms`).
pub(super) fn decide(
    policy: &Policy,
    instance: &Instance,
    obs: &Observation<'_>,
    finding: &Finding,
    severity: Severity,
    agent: AgentDecisionState<'_>,
    processing_ms: Option<i64>,
) -> Option<(Alert, Vec<Command>)> {
    let event = obs.event;
    let now = event.time_ms;
    let score = finding.score();
    let baseline = obs.baseline;
    // The cooldown holds on either side of the last alert: events of one burst that
    // arrive out of order are still one alert (taken one by one, each earlier one
    // restarted the cooldown and added its risk).
    if let Some(last) = agent.slot.last_alert_ms {
        if now.abs_diff(last) < instance.cooldown_ms.unsigned_abs() {
            agent.slot.suppressed += 1;
            return None;
        }
    }
    let suppressed = std::mem::take(&mut agent.slot.suppressed);
    agent.slot.last_alert_ms = Some(agent.slot.last_alert_ms.map_or(now, |last| last.max(now)));
    // An instance adds risk only up to the tier of its own strongest command: a
    // detector that may only ask for approval (a missing approval, a young baseline)
    // cannot, by repeating itself, stack up the risk another detector's single low
    // alert would then turn into a revocation.
    let ceiling = policy.ceiling(instance, baseline, finding, now);
    let risk = agent.risk.add_up_to(
        now,
        policy.risk_half_life_ms,
        policy.weight(severity),
        policy.tier_risk_of(ceiling),
    );

    let id = alert_id(&instance.id, &event.agent_id, &event.event_id);
    let summary = instance.detector.summarize(obs, finding);
    // The registry is authoritative; the event's own claim and what earlier events
    // claimed are fallbacks for agents it does not know.
    let owner = obs
        .identity
        .record
        .and_then(|r| r.owner())
        .or(event.owner.as_deref())
        .or(baseline.owner.as_deref())
        .map(str::to_owned);
    let credential_id = event.credential_id.as_deref().map(str::to_owned);
    let commands = respond(
        policy,
        instance,
        ceiling,
        risk,
        agent.response,
        Issue {
            alert_id: &id,
            summary: &summary,
            time_ms: now,
            latest_ms: baseline.last_seen_ms,
            processing_ms,
            agent_id: &event.agent_id,
            credential_id: credential_id.as_deref(),
            owner: owner.as_deref(),
        },
    );
    let alert = Alert {
        schema_version: SCHEMA_VERSION,
        alert_id: id,
        time: Timestamp::from_millis(now),
        agent_id: event.agent_id.to_string(),
        owner,
        detector: DetectorRef {
            id: instance.id.clone(),
            kind: instance.kind.to_owned(),
        },
        severity,
        score: round(score, 4),
        risk: round(risk, 3),
        anomaly: finding.anomaly,
        summary,
        evidence: evidence(instance, obs, finding),
        event_ids: vec![event.event_id.to_string()],
        credential_id,
        commands: commands.iter().map(|c| c.command_id.clone()).collect(),
        suppressed,
        fleet: None,
    };
    Some((alert, commands))
}

/// What a fleet alert reports (see [`crate::pipeline::fleet`]).
pub(super) struct FleetReport<'a> {
    pub scope: FleetScope,
    /// The system the pattern is on.
    pub system: &'a str,
    pub agents: usize,
    pub sample: &'a [String],
    pub window_ms: i64,
    /// The name of the pattern's episode (the alert's id carries its slot).
    pub episode_ms: i64,
    /// The pattern's quiet time before it is announced again (the slots' length).
    pub hold_ms: i64,
}

/// The one alert for a fleet-wide pattern: no commands, no risk to any agent; the
/// agent whose finding announced the pattern carries it, and its id names the episode
/// ([`fleet_alert_id`]).
pub(super) fn fleet_alert(
    instance: &Instance,
    obs: &Observation<'_>,
    finding: &Finding,
    risk: f64,
    report: FleetReport<'_>,
) -> Alert {
    let mut alert = fleet_carrier(instance, obs, finding, risk);
    announce_fleet(&mut alert, report);
    alert
}

/// What a fleet alert says of the finding that carries it, before the pattern's facts
/// are known: kept for a sighting that may name an episode the group announces late
/// (see [`crate::pipeline::FleetContext::carry`]), and completed by [`announce_fleet`].
pub(super) fn fleet_carrier(
    instance: &Instance,
    obs: &Observation<'_>,
    finding: &Finding,
    risk: f64,
) -> Alert {
    let event = obs.event;
    let mut evidence = evidence(instance, obs, finding);
    evidence
        .context
        .insert("baseline".into(), "fleet event".into());
    Alert {
        schema_version: SCHEMA_VERSION,
        alert_id: String::new(),
        time: Timestamp::from_millis(event.time_ms),
        agent_id: event.agent_id.to_string(),
        owner: None,
        detector: DetectorRef {
            id: instance.id.clone(),
            kind: instance.kind.to_owned(),
        },
        severity: instance.thresholds.mildest().unwrap_or(Severity::Low),
        score: round(finding.score(), 4),
        risk: round(risk, 3),
        anomaly: finding.anomaly,
        summary: String::new(),
        evidence,
        event_ids: vec![event.event_id.to_string()],
        credential_id: None,
        commands: Vec::new(),
        suppressed: 0,
        fleet: None,
    }
}

/// Completes a [`fleet_carrier`] with the pattern's facts: its id (the episode's),
/// its summary and its fleet evidence.
pub(super) fn announce_fleet(alert: &mut Alert, report: FleetReport<'_>) {
    let (pattern, what) = match report.scope {
        FleetScope::Novelty => ("first_use", "started using"),
        FleetScope::Failures => ("failures", "had bursts of failures on"),
    };
    let system = report.system;
    let hours = report.window_ms as f64 / HOUR_MS as f64;
    alert.summary = format!(
        "{} agents {what} {system} within {hours:.1}h (first: {}): one fleet-wide change, such as a rollout or an outage, not {} agent anomalies; no commands issued",
        report.agents,
        report.sample.join(", "),
        report.agents
    );
    alert.alert_id = fleet_alert_id(
        &alert.detector.id,
        pattern,
        system,
        report.episode_ms,
        report.hold_ms,
    );
    alert.fleet = Some(FleetScopeEvidence {
        pattern: pattern.into(),
        system: system.to_owned(),
        agents: report.agents as u64,
        sample_agents: report.sample.to_vec(),
        window_hours: round(hours, 2),
    });
}

struct Issue<'a> {
    alert_id: &'a str,
    summary: &'a str,
    time_ms: i64,
    /// The agent's latest event time before this one: a late event's command runs from
    /// the agent's present, not from its own past.
    latest_ms: i64,
    processing_ms: Option<i64>,
    agent_id: &'a str,
    credential_id: Option<&'a str>,
    owner: Option<&'a str>,
}

/// Turns risk into at most one command: the strongest of the instance's `on_alert`
/// command and the risk tier (capped by the instance's `max`), issued only if it is
/// stronger than what is already in force. `revoke_credential` needs a credential to
/// name; without one the engine asks for approval instead of guessing.
fn respond(
    policy: &Policy,
    instance: &Instance,
    ceiling: CommandAction,
    risk: f64,
    response: &mut ResponseState,
    issue: Issue<'_>,
) -> Vec<Command> {
    let by_risk = policy.tier_for(risk).map(|a| a.min(ceiling));
    let on_alert = instance.response.on_alert.map(|a| a.min(ceiling));
    let Some(mut action) = by_risk.max(on_alert) else {
        return Vec::new();
    };
    if action == CommandAction::RevokeCredential && issue.credential_id.is_none() {
        action = CommandAction::RequireApproval;
    }
    // A late event is judged, and its command runs, from the agent's present (its
    // latest event): such a command neither lapses before the agent's next event, to be
    // issued again, nor goes out already expired. On the wire it also counts from
    // processing time, when later.
    let present = issue.time_ms.max(issue.latest_ms);
    if response
        .in_force(present)
        .is_some_and(|active| active >= action)
    {
        return Vec::new();
    }
    let offences = &mut response.offences[action as usize];
    *offences = offences.saturating_add(1);
    let lifetime = policy.expiry_ms(action, *offences);
    let expires = issue
        .processing_ms
        .map_or(present, |p| p.max(present))
        .saturating_add(lifetime);
    response.active = Some(action);
    // What is in force is judged in event time, like everything else the engine
    // decides (a replay of last month must escalate as the live run did); only the
    // command's wire expiry counts from processing time.
    response.until_ms = present.saturating_add(lifetime);
    vec![Command {
        schema_version: SCHEMA_VERSION,
        command_id: command_id(issue.alert_id, action.as_str()),
        time: format_rfc3339(issue.time_ms),
        action,
        agent_id: issue.agent_id.to_owned(),
        credential_id: issue
            .credential_id
            .filter(|_| {
                action == CommandAction::RevokeCredential || action == CommandAction::SuspendAgent
            })
            .map(str::to_owned),
        owner: issue.owner.map(str::to_owned),
        reason: CommandReason {
            alert_id: issue.alert_id.to_owned(),
            summary: issue.summary.to_owned(),
        },
        expires_at: format_rfc3339(expires),
        issued_by: policy.issued_by.clone(),
        signature: None,
    }]
}

fn evidence(instance: &Instance, obs: &Observation<'_>, finding: &Finding) -> Evidence {
    let event = obs.event;
    let mut context = BTreeMap::new();
    context.insert("system".to_owned(), event.system.to_string());
    context.insert("action".to_owned(), event.action.to_string());
    if let Some(resource) = &event.resource {
        context.insert("resource".to_owned(), resource.to_string());
    }
    if let Some(session) = &event.session_id {
        context.insert("session_id".to_owned(), session.to_string());
    }
    for (key, value) in &event.attributes {
        context.insert(format!("attributes.{key}"), value.to_string());
    }
    // New behaviour the agent keeps showing is being learned (its pending model holds
    // it); say so, so that a reviewer can tell a fresh anomaly from a change in progress.
    let status = if finding.learning {
        "new behaviour, being learned"
    } else {
        "anomalous"
    };
    context.insert("baseline".to_owned(), status.to_owned());
    instance.detector.explain(obs, finding, &mut context);
    Evidence {
        observed: round(finding.observed, 6),
        expected: round(finding.expected, 6),
        unit: finding.unit.to_owned(),
        statistic: finding.statistic.to_owned(),
        statistic_value: round(finding.statistic_value, 6),
        p_value: finding.p_value,
        baseline_size: finding.baseline_size,
        baseline_age_hours: round(obs.baseline.age_hours(event.time_ms), 2),
        context,
    }
}

/// Rounds for output, keeping alerts readable and byte-stable across platforms.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_expiries_escalate() {
        let policy = Policy::default();
        assert_eq!(policy.tier_for(3.9), None);
        assert_eq!(policy.tier_for(4.0), Some(CommandAction::RequireApproval));
        assert_eq!(policy.tier_for(9.0), Some(CommandAction::RevokeCredential));
        assert_eq!(policy.tier_for(100.0), Some(CommandAction::SuspendAgent));
        let first = policy.expiry_ms(CommandAction::RequireApproval, 1);
        let third = policy.expiry_ms(CommandAction::RequireApproval, 3);
        assert_eq!(third, first * 4);
        assert_eq!(
            policy.expiry_ms(CommandAction::SuspendAgent, 40),
            policy.max_expiry_ms
        );
    }

    fn finding(learning: bool) -> Finding {
        Finding {
            p_value: 1e-9,
            anomaly: crate::model::Anomaly::HighVolume,
            observed: 10.0,
            expected: 1.0,
            unit: "bytes",
            statistic: "t",
            statistic_value: 6.0,
            rule: None,
            baseline_size: 100,
            pending_p: None,
            learning,
            response_cap: None,
            fleet_only: false,
            magnitude: 10.0,
            fleet: None,
        }
    }

    #[test]
    fn a_statistical_finding_on_a_young_baseline_may_only_ask_for_approval() {
        let detectors = crate::detect::DetectorSet::builtin().unwrap();
        let instance = |id: &str| detectors.iter().find(|i| i.id == id).unwrap();
        let policy = Policy::default();
        let baseline = crate::baseline::Baseline {
            first_seen_ms: 0,
            events: policy.mature_after_events,
            ..Default::default()
        };
        let two_days = 2 * DAY_MS;
        let eight_days = 8 * DAY_MS;
        let fresh = finding(false);
        assert_eq!(
            policy.ceiling(instance("rate"), &baseline, &fresh, two_days),
            CommandAction::RequireApproval
        );
        assert_eq!(
            policy.ceiling(instance("rate"), &baseline, &fresh, eight_days),
            instance("rate").response.max
        );
        assert!(instance("rate").response.max > CommandAction::RequireApproval);
        // A policy finding is a fact, whatever the baseline's age.
        let scope = instance("scope_violation");
        assert_eq!(
            policy.ceiling(scope, &baseline, &fresh, two_days),
            scope.response.max
        );
        assert!(scope.response.max > CommandAction::RequireApproval);
    }

    #[test]
    fn a_statistical_finding_on_a_slow_agents_thin_baseline_may_only_ask_for_approval() {
        let detectors = crate::detect::DetectorSet::builtin().unwrap();
        let rate = detectors.iter().find(|i| i.id == "rate").unwrap();
        let policy = Policy::default();
        let slow = |events: u64| crate::baseline::Baseline {
            first_seen_ms: 0,
            events,
            ..Default::default()
        };
        // A month old, but at ten events a day its history is three hundred events.
        let month = 30 * DAY_MS;
        let fresh = finding(false);
        assert_eq!(
            policy.ceiling(rate, &slow(300), &fresh, month),
            CommandAction::RequireApproval
        );
        assert_eq!(
            policy.ceiling(rate, &slow(policy.mature_after_events), &fresh, month),
            rate.response.max
        );
        assert!(rate.response.max > CommandAction::RequireApproval);
        // A policy finding is a fact, however thin the history.
        let scope = detectors
            .iter()
            .find(|i| i.id == "scope_violation")
            .unwrap();
        assert_eq!(
            policy.ceiling(scope, &slow(3), &fresh, month),
            scope.response.max
        );
    }

    #[test]
    fn a_finding_of_a_change_being_learned_may_only_ask_for_approval() {
        let detectors = crate::detect::DetectorSet::builtin().unwrap();
        let volume = detectors.iter().find(|i| i.id == "volume").unwrap();
        let policy = Policy::default();
        let mature = crate::baseline::Baseline {
            first_seen_ms: 0,
            events: policy.mature_after_events,
            ..Default::default()
        };
        let now = 30 * DAY_MS;
        assert!(volume.response.max > CommandAction::RequireApproval);
        assert_eq!(
            policy.ceiling(volume, &mature, &finding(false), now),
            volume.response.max
        );
        assert_eq!(
            policy.ceiling(volume, &mature, &finding(true), now),
            CommandAction::RequireApproval
        );
    }

    #[test]
    fn a_finding_never_leads_past_its_own_response_cap() {
        let detectors = crate::detect::DetectorSet::builtin().unwrap();
        let denied = detectors.iter().find(|i| i.id == "denied_burst").unwrap();
        let policy = Policy::default();
        let mature = crate::baseline::Baseline {
            events: policy.mature_after_events,
            ..Default::default()
        };
        let capped = Finding {
            response_cap: Some(CommandAction::RequireApproval),
            ..finding(false)
        };
        assert!(denied.response.max > CommandAction::RequireApproval);
        assert_eq!(
            policy.ceiling(denied, &mature, &finding(false), 30 * DAY_MS),
            denied.response.max
        );
        assert_eq!(
            policy.ceiling(denied, &mature, &capped, 30 * DAY_MS),
            CommandAction::RequireApproval
        );
    }

    #[test]
    fn a_late_events_command_runs_from_the_agents_present() {
        let detectors = crate::detect::DetectorSet::builtin().unwrap();
        let rate = detectors.iter().find(|i| i.id == "rate").unwrap();
        let policy = Policy::default();
        let risk = policy.tier_risk[0];
        let latest = 30 * DAY_MS;
        let issue = |time_ms: i64| Issue {
            alert_id: "a1",
            summary: "s",
            time_ms,
            latest_ms: latest,
            processing_ms: None,
            agent_id: "agent-1",
            credential_id: None,
            owner: None,
        };
        let mut response = ResponseState::default();
        let lifetime = policy.expiry_ms(CommandAction::RequireApproval, 1);
        // Dated two lifetimes before the agent's latest event.
        let late = respond(
            &policy,
            rate,
            CommandAction::SuspendAgent,
            risk,
            &mut response,
            issue(latest - 2 * lifetime),
        );
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].action, CommandAction::RequireApproval);
        assert_eq!(late[0].expires_at, format_rfc3339(latest + lifetime));
        assert_eq!(response.until_ms, latest + lifetime);
        // The agent's next event finds the command in force: no second one.
        let next = respond(
            &policy,
            rate,
            CommandAction::SuspendAgent,
            risk,
            &mut response,
            issue(latest + 60_000),
        );
        assert!(next.is_empty());
    }
}
