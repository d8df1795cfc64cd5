//! The approval loop `demo` ends with, one step at a time: an agent's high-risk action
//! without approval is answered with `require_approval`; a human's approval arrives,
//! naming that command; the approved action flows; a second use of the single-use
//! approval is caught as `approval_exhausted`.
//!
//! The simulated days show that approvals are verified at scale; this shows *how*,
//! with the records and alerts an operator would see, on the same engine.

use std::io::Write;

use super::render::format_alert;
use crate::approvals::{AgentApprovalV1, Approval, ApprovalUpdate};
use crate::drive::lines::Memory;
use crate::drive::{drive, Clock, Collect, Commit, DriveOptions, Driver};
use crate::error::{Error, Result};
use crate::model::time::{format_rfc3339, format_short, HOUR_MS, MINUTE_MS};
use crate::model::{
    AgentEventV1, Alert, CommandAction, EventTime, Limits, TimeBounds, SCHEMA_VERSION,
};
use crate::pipeline::{Engine, Outputs};
use crate::sim::{AgentSpec, Profile, Simulation};

/// The detector whose findings the loop is about.
const DETECTOR: &str = "high_risk_action";
/// The approval's id and approver.
const APPROVAL_ID: &str = "apr-demo-0001";
const APPROVER: &str = "ops-lead@example.com";

/// What the loop saw at each step, for callers that check it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopOutcome {
    /// The `require_approval` command the unapproved action drew, if any.
    pub request: Option<String>,
    /// The rule of the alert on the approved action (`None`: it was allowed).
    pub approved: Option<String>,
    /// The rule of the alert on the reuse (`approval_exhausted` when caught).
    pub reused: Option<String>,
}

/// Runs the loop on `engine` (which must verify approvals) with an agent of
/// `simulation`, after its last simulated minute, and narrates it to `out`.
pub fn run_approval_loop(
    engine: &mut Engine,
    simulation: &Simulation,
    out: &mut dyn Write,
) -> Result<LoopOutcome> {
    // A batch agent (deletes are part of its job) that no attack touched, so that
    // nothing but the loop shows in its alerts; failing that, any batch agent or any.
    let agents = simulation.agents();
    let attacked: Vec<usize> = simulation.attacks().iter().map(|a| a.agent).collect();
    let batch = |a: &&AgentSpec| a.profile == Profile::NightlyBatch;
    let Some(agent) = agents
        .iter()
        .filter(batch)
        .find(|a| !attacked.contains(&a.index))
        .or(agents.iter().find(batch))
        .or(agents.first())
    else {
        return Ok(LoopOutcome::default());
    };
    let system = agent.systems[0].name.as_str();
    // In the agent's batch window on the day after the simulation.
    let start = simulation.end_ms() + agent.batch_start_h.rem_euclid(24) * HOUR_MS;
    let at = |minutes: i64| start + 10 * MINUTE_MS + minutes * MINUTE_MS;
    let mut outcome = LoopOutcome::default();
    let mut say = |text: String| write(out, &text);

    say(format!(
        "\nthe approval loop, step by step ({} on {system}):\n",
        agent.id
    ))?;
    say(format!(
        "1. {}  {} deletes on {system} without an approval_id\n",
        format_short(at(0)),
        agent.id
    ))?;
    let first = step(engine, agent, system, at(0), None, 1)?;
    let Some(alert) = finding(&first) else {
        return say("   no high_risk_action alert (is the detector enabled?)\n".into())
            .map(|()| outcome);
    };
    say(indent(&format_alert(alert, &first.commands)))?;
    outcome.request = first
        .commands
        .iter()
        .find(|c| c.action == CommandAction::RequireApproval && c.agent_id == agent.id)
        .map(|c| c.command_id.clone());

    let record = AgentApprovalV1 {
        schema_version: None,
        approval_id: APPROVAL_ID.into(),
        agent_id: agent.id.clone(),
        actions: vec!["delete".into()],
        systems: Some(vec![system.to_owned()]),
        approved_by: APPROVER.into(),
        issued_at: format_rfc3339(at(3)),
        expires_at: format_rfc3339(at(120)),
        max_uses: Some(1),
        request_id: outcome.request.clone(),
        signature: None,
    };
    let json = serde_json::to_string(&record).map_err(|e| Error::InvalidInput {
        context: "the demo's approval".into(),
        detail: e.to_string(),
    })?;
    let approval = Approval::compile(record).map_err(|e| Error::InvalidInput {
        context: "the demo's approval".into(),
        detail: e.to_string(),
    })?;
    engine.apply_approval(ApprovalUpdate::Upsert(Box::new(approval)));
    say(format!(
        "2. {}  {APPROVER} approves one delete on {system}, answering {}:\n   {json}\n",
        format_short(at(3)),
        outcome.request.as_deref().unwrap_or("no command"),
    ))?;

    let approved = step(engine, agent, system, at(5), Some(APPROVAL_ID), 2)?;
    outcome.approved = finding(&approved).map(rule_of);
    match finding(&approved) {
        None => say(format!(
            "3. {}  {} deletes on {system} with {APPROVAL_ID}: allowed, no alert\n",
            format_short(at(5)),
            agent.id
        ))?,
        Some(alert) => say(format!(
            "3. {}  {} deletes on {system} with {APPROVAL_ID}: NOT allowed ({})\n{}",
            format_short(at(5)),
            agent.id,
            rule_of(alert),
            indent(&format_alert(alert, &approved.commands))
        ))?,
    }

    let reuse = step(engine, agent, system, at(25), Some(APPROVAL_ID), 3)?;
    outcome.reused = finding(&reuse).map(rule_of);
    match finding(&reuse) {
        Some(alert) => say(format!(
            "4. {}  {} deletes again with {APPROVAL_ID} (single use): caught, rule {}\n{}",
            format_short(at(25)),
            agent.id,
            rule_of(alert),
            indent(&format_alert(alert, &reuse.commands))
        ))?,
        None => say(format!(
            "4. {}  {} deletes again with {APPROVAL_ID}: NOT caught\n",
            format_short(at(25)),
            agent.id
        ))?,
    }
    Ok(outcome)
}

/// Runs one delete by `agent` through the engine, as one batch of the driver.
fn step(
    engine: &mut Engine,
    agent: &AgentSpec,
    system: &str,
    time_ms: i64,
    approval: Option<&str>,
    n: u32,
) -> Result<Outputs> {
    let event = AgentEventV1 {
        schema_version: Some(SCHEMA_VERSION),
        event_id: format!("evt-demo-approval-{n}"),
        time: EventTime::Rfc3339(format_rfc3339(time_ms)),
        agent_id: agent.id.clone(),
        action: "delete".into(),
        system: system.to_owned(),
        owner: Some(agent.owner.clone()),
        credential_id: None,
        session_id: None,
        resource: None,
        bytes_in: 0,
        bytes_out: 0,
        outcome: None,
        approval_id: approval.map(str::to_owned),
        attributes: Default::default(),
    };
    let invalid = |detail: String| Error::InvalidInput {
        context: "the demo's approval loop".into(),
        detail,
    };
    let line = serde_json::to_vec(&event).map_err(|e| invalid(e.to_string()))?;
    let mut source = Memory::default();
    source.push(&line);
    let options = DriveOptions {
        limits: Limits::default(),
        time: TimeBounds::REPLAY,
        clock: Clock::Watermark,
        commit: Commit::EveryEvents(u64::MAX),
        metrics: None,
    };
    let mut driver = Driver::new(engine, Collect::default(), options);
    drive(&mut source, &mut driver)?;
    if driver.stats().invalid() > 0 {
        let bad = driver.stats().invalid_samples.first();
        return Err(invalid(bad.map(|b| b.message.clone()).unwrap_or_default()));
    }
    Ok(driver.into_sink().outputs)
}

/// The `high_risk_action` alert among `outputs`, if any.
fn finding(outputs: &Outputs) -> Option<&Alert> {
    outputs.alerts.iter().find(|a| a.detector.id == DETECTOR)
}

/// The typed approval rule an alert names.
fn rule_of(alert: &Alert) -> String {
    alert
        .evidence
        .context
        .get("rule")
        .cloned()
        .unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("   {line}\n")).collect()
}

fn write(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing demo output", e))
}
