//! `simulate --approvals` closes the loop: the approval records it writes are valid
//! agent-approval v1 and back every legitimate delete, so `replay --approvals` raises no
//! `high_risk_action` alert on them, while each labelled approval attack is caught by
//! `high_risk_action` with the rule that names it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use agentwatch::eval::{load_labels, Incident};
use agentwatch::model::time::parse_rfc3339;
use common::{assert_valid, validator};
use serde_json::Value;

/// What one simulate-and-replay produced.
struct Run {
    labels: Vec<Incident>,
    /// The `high_risk_action` alerts.
    alerts: Vec<Value>,
    approvals: Vec<Value>,
    events: Vec<Value>,
}

fn agentwatch(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(args)
        .output()
        .expect("run agentwatch");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A small fleet (20 agents, 6 days: two attacks of each approval kind), simulated
/// with its approvals and registry and replayed with them.
fn simulate_and_replay() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    agentwatch(&[
        "simulate",
        "--agents",
        "20",
        "--days",
        "6",
        "--seed",
        "5",
        "--output",
        &path("events.jsonl"),
        "--labels",
        &path("labels.json"),
        "--registry",
        &path("registry.toml"),
        "--approvals",
        &path("approvals.jsonl"),
    ]);
    agentwatch(&[
        "replay",
        "--input",
        &path("events.jsonl"),
        "--registry",
        &path("registry.toml"),
        "--approvals",
        &path("approvals.jsonl"),
        "--output",
        &path("alerts.jsonl"),
    ]);
    let alerts = json_lines(&dir.path().join("alerts.jsonl"))
        .into_iter()
        .filter(|v| v["detector"]["id"] == "high_risk_action")
        .collect();
    Run {
        labels: load_labels(&dir.path().join("labels.json")).unwrap(),
        alerts,
        approvals: json_lines(&dir.path().join("approvals.jsonl")),
        events: json_lines(&dir.path().join("events.jsonl")),
    }
}

fn ms(text: &str) -> i64 {
    parse_rfc3339(text).unwrap()
}

/// The alerts on `incident`'s agent from its first to its last event.
fn alerts_in<'a>(run: &'a Run, incident: &Incident) -> Vec<&'a Value> {
    let (start, end) = (ms(&incident.start), ms(&incident.end));
    run.alerts
        .iter()
        .filter(|a| a["agent_id"] == incident.agent_id.as_str())
        .filter(|a| (start..=end).contains(&ms(a["time"].as_str().unwrap())))
        .collect()
}

/// Every labelled incident of `kind` draws exactly one `high_risk_action` alert, on
/// its last event, with `rule`.
fn assert_caught(kind: &str, rule: &str) {
    let run = simulate_and_replay();
    let incidents: Vec<&Incident> = run.labels.iter().filter(|i| i.kind == kind).collect();
    assert!(
        incidents.len() >= 2,
        "{kind}: {} incidents",
        incidents.len()
    );
    for incident in incidents {
        assert_eq!(incident.detector.as_deref(), Some("high_risk_action"));
        let alerts = alerts_in(&run, incident);
        assert_eq!(
            alerts.len(),
            1,
            "{kind} on {}: {alerts:?}",
            incident.agent_id
        );
        let alert = alerts[0];
        assert_eq!(alert["evidence"]["context"]["rule"], rule, "{alert}");
        assert_eq!(ms(alert["time"].as_str().unwrap()), ms(&incident.end));
    }
}

#[test]
fn forged_approvals_are_caught_as_unknown() {
    assert_caught("forged_approval", "approval_unknown");
}

#[test]
fn foreign_approvals_are_caught_as_granted_to_another_agent() {
    assert_caught("foreign_approval", "approval_other_agent");
}

#[test]
fn expired_approvals_are_caught_as_expired() {
    assert_caught("expired_approval", "approval_expired");
}

/// The first use of the single-use approval is legitimate (no alert); the second is
/// caught. `assert_caught` holds the one alert to the incident's last event.
#[test]
fn reused_approvals_are_caught_as_exhausted() {
    assert_caught("reused_approval", "approval_exhausted");
}

/// The records are valid agent-approval v1, every approval a legitimate delete carries
/// has one, and no `high_risk_action` alert falls outside the approval attacks.
#[test]
fn approved_benign_deletes_raise_no_high_risk_alert() {
    let run = simulate_and_replay();
    let schema = validator("agent-approval.v1.schema.json");
    let mut recorded = BTreeSet::new();
    for (n, record) in run.approvals.iter().enumerate() {
        assert_valid(&schema, record, &format!("approval record {}", n + 1));
        recorded.insert(record["approval_id"].as_str().unwrap().to_owned());
    }
    // The attacks' own deletes are those of their victims within their spans.
    let approval_incidents: Vec<&Incident> = run
        .labels
        .iter()
        .filter(|i| i.kind.ends_with("_approval"))
        .collect();
    let in_attack = |event: &Value| {
        approval_incidents.iter().any(|i| {
            event["agent_id"] == i.agent_id.as_str()
                && (ms(&i.start)..=ms(&i.end)).contains(&ms(event["time"].as_str().unwrap()))
        })
    };
    let benign: Vec<&Value> = run
        .events
        .iter()
        .filter(|e| e["action"] == "delete" && e["approval_id"].is_string())
        .filter(|e| !in_attack(e))
        .collect();
    assert!(benign.len() >= 20, "only {} approved deletes", benign.len());
    for event in &benign {
        let id = event["approval_id"].as_str().unwrap();
        assert!(recorded.contains(id), "{id} has no record");
    }
    // An alert on an event that carries an approval must be one of the approval
    // attacks; any other is on an event without one (the policy attacks' deletes).
    for alert in &run.alerts {
        let id = &alert["event_ids"][0];
        let event = run.events.iter().find(|e| &e["event_id"] == id).unwrap();
        if event["approval_id"].is_string() {
            let explained = approval_incidents
                .iter()
                .any(|incident| alerts_in(&run, incident).contains(&alert));
            assert!(explained, "alert on an approved benign action: {alert}");
        } else {
            assert_eq!(alert["evidence"]["context"]["rule"], "approval_missing");
        }
    }
}
