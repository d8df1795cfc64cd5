//! Verified approvals through the engine: each of the six rules fires on what it must
//! and stays silent on an approved action, late approvals are honoured within the grace
//! period, and use counts and held events survive a restart (they are agent state).

mod common;

use agentwatch::approvals::source::parse_file_text;
use agentwatch::approvals::{ApprovalStore, ApprovalUpdate};
use agentwatch::model::time::{format_rfc3339, MINUTE_MS};
use agentwatch::model::{AgentEventV1, Alert, CommandAction};
use agentwatch::pipeline::{Engine, Outputs};
use agentwatch::state::PositionKey;
use common::{event, monday, run};

const GRACE_MS: i64 = 2 * MINUTE_MS;

fn t(minutes: i64) -> i64 {
    monday() + 10 * 60 * MINUTE_MS + minutes * MINUTE_MS
}

/// One approval record as JSON.
fn approval(id: &str, agent: &str, systems: &str, issued: i64, expires: i64, uses: u32) -> String {
    format!(
        r#"{{"approval_id":"{id}","agent_id":"{agent}","actions":["delete","payment:*"],"systems":{systems},"approved_by":"ana@example.com","issued_at":"{}","expires_at":"{}","max_uses":{uses}}}"#,
        format_rfc3339(issued),
        format_rfc3339(expires)
    )
}

fn store(records: &[String]) -> ApprovalStore {
    let found = parse_file_text(&records.join("\n"), None);
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let mut store = ApprovalStore::new(GRACE_MS);
    for approval in found.approvals {
        store.apply(ApprovalUpdate::Upsert(Box::new(approval)));
    }
    store
}

fn standard_approvals() -> Vec<String> {
    vec![
        approval("apr-ok", "billing-bot", r#"["billing"]"#, t(-60), t(600), 1),
        approval("apr-hr", "hr-bot", r#"["billing"]"#, t(-60), t(600), 1),
        approval(
            "apr-old",
            "billing-bot",
            r#"["billing"]"#,
            t(-120),
            t(-60),
            1,
        ),
        approval("apr-twice", "billing-bot", "null", t(-60), t(600), 2),
    ]
}

fn delete(id: u64, minutes: i64, approval: Option<&str>) -> AgentEventV1 {
    let mut e = event(id, "billing-bot", t(minutes), "delete", "billing", 0);
    e.approval_id = approval.map(str::to_owned);
    e
}

fn approval_alerts(out: &Outputs) -> Vec<&Alert> {
    out.alerts
        .iter()
        .filter(|a| a.detector.id == "high_risk_action")
        .collect()
}

fn rules(out: &Outputs) -> Vec<(String, String)> {
    approval_alerts(out)
        .iter()
        .map(|a| (a.event_ids[0].clone(), a.evidence.context["rule"].clone()))
        .collect()
}

fn pair(event: &str, rule: &str) -> (String, String) {
    (format!("billing-bot-{event}"), rule.to_owned())
}

fn engine(dir: &std::path::Path, approvals: &[String]) -> Engine {
    common::engine(dir).with_approvals(store(approvals))
}

#[test]
fn each_rule_fires_with_the_approvals_details_and_approved_actions_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path(), &standard_approvals());
    // Fifteen minutes apart: the instance's 10-minute cooldown never hides a finding.
    let mut crm = delete(4, 60, Some("apr-ok"));
    crm.system = "crm".into();
    let out = run(
        &mut engine,
        &[
            delete(1, 0, None),
            delete(2, 15, Some("apr-forged")),
            delete(3, 30, Some("apr-hr")),
            crm,
            delete(5, 75, Some("apr-old")),
            delete(6, 90, Some("apr-ok")),
            delete(7, 105, Some("apr-ok")),
            // Any system, two uses: both pass, the third is one too many.
            delete(8, 120, Some("apr-twice")),
            delete(9, 121, Some("apr-twice")),
            delete(10, 135, Some("apr-twice")),
        ],
    );
    assert_eq!(
        rules(&out),
        [
            pair("1", "approval_missing"),
            pair("2", "approval_unknown"),
            pair("3", "approval_other_agent"),
            pair("4", "approval_scope"),
            pair("5", "approval_expired"),
            pair("7", "approval_exhausted"),
            pair("10", "approval_exhausted"),
        ]
    );
    let alerts = approval_alerts(&out);
    let foreign = &alerts[2].evidence.context;
    assert_eq!(foreign["approval.id"], "apr-hr");
    assert_eq!(foreign["approval.agent_id"], "hr-bot");
    assert_eq!(foreign["approval.approved_by"], "ana@example.com");
    assert!(
        alerts[2].summary.contains("granted to another agent")
            && alerts[2].summary.contains("apr-hr"),
        "{}",
        alerts[2].summary
    );
    assert_eq!(
        alerts[4].evidence.context["approval.expires_at"],
        format_rfc3339(t(-60))
    );
    let reused = &alerts[5];
    assert_eq!(reused.evidence.context["approval.max_uses"], "1");
    assert_eq!(
        reused.evidence.observed, 2.0,
        "the second use of a single-use approval"
    );
    assert!(
        !alerts[1].evidence.context.contains_key("approval.agent_id"),
        "unknown: no details to give"
    );
    assert!(out
        .commands
        .iter()
        .all(|c| c.action == CommandAction::RequireApproval));
}

#[test]
fn without_an_approval_source_any_approval_id_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    let out = run(
        &mut engine,
        &[delete(1, 0, Some("apr-forged")), delete(2, 15, None)],
    );
    assert_eq!(rules(&out), [pair("2", "approval_missing")]);
}

#[test]
fn a_late_approval_is_honoured_within_the_grace_and_not_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut approvals = standard_approvals();
    // Issued a minute after the action (clock skew): within the two-minute grace.
    approvals.push(approval("apr-skew", "billing-bot", "null", t(1), t(600), 1));
    approvals.push(approval(
        "apr-skew-far",
        "billing-bot",
        "null",
        t(33),
        t(600),
        1,
    ));
    let mut engine = engine(dir.path(), &approvals);
    let out = run(
        &mut engine,
        &[
            delete(1, 0, Some("apr-skew")),
            delete(2, 30, Some("apr-skew-far")),
        ],
    );
    assert_eq!(rules(&out), [pair("2", "approval_expired")]);

    // Topic lag: the approval arrives after its event, before the wait ends.
    let out = run(&mut engine, &[delete(3, 60, Some("apr-lagging"))]);
    assert!(
        rules(&out).is_empty(),
        "held, not judged: {:?}",
        rules(&out)
    );
    assert_eq!(engine.agents_holding(), 1);
    engine.apply_approval(ApprovalUpdate::Upsert(Box::new(
        store(&[approval(
            "apr-lagging",
            "billing-bot",
            "null",
            t(59),
            t(600),
            1,
        )])
        .get("apr-lagging")
        .unwrap()
        .clone(),
    )));
    // The next batch releases it (approved, one use counted): its reuse is caught.
    let mut other = event(4, "other-bot", t(61), "read", "crm", 0);
    other.approval_id = None;
    let out = run(&mut engine, &[other, delete(5, 75, Some("apr-lagging"))]);
    assert_eq!(rules(&out), [pair("5", "approval_exhausted")]);
    assert_eq!(engine.agents_holding(), 0);

    // An approval that never arrives: decided once the watermark passes time + grace,
    // even if the agent itself stays quiet.
    let out = run(&mut engine, &[delete(6, 90, Some("apr-never"))]);
    assert!(rules(&out).is_empty());
    let out = run(
        &mut engine,
        &[event(7, "other-bot", t(91), "read", "crm", 0)],
    );
    assert!(rules(&out).is_empty(), "one minute is within the grace");
    let out = run(
        &mut engine,
        &[event(8, "other-bot", t(92), "read", "crm", 0)],
    );
    assert_eq!(rules(&out), [pair("6", "approval_unknown")]);
}

/// An engine that used `apr-ok` and held a delete for `apr-arrives-later`, committed,
/// and restarted once that approval has arrived.
fn restarted_with_a_held_event(dir: &std::path::Path) -> Engine {
    {
        let mut engine = engine(dir, &standard_approvals());
        let out = run(
            &mut engine,
            &[
                delete(1, 0, Some("apr-ok")),
                delete(2, 15, Some("apr-arrives-later")),
            ],
        );
        assert!(rules(&out).is_empty());
        engine.commit(&[(PositionKey::named("test"), 2)]).unwrap();
    }
    let mut approvals = standard_approvals();
    approvals.push(approval(
        "apr-arrives-later",
        "billing-bot",
        "null",
        t(14),
        t(600),
        1,
    ));
    engine(dir, &approvals)
}

#[test]
fn use_counts_and_held_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = restarted_with_a_held_event(dir.path());
    assert_eq!(
        engine.agents_holding(),
        1,
        "the held event was stored with the agent"
    );
    let out = run(
        &mut engine,
        &[
            delete(3, 30, Some("apr-ok")),
            delete(4, 45, Some("apr-arrives-later")),
        ],
    );
    assert_eq!(
        rules(&out),
        [
            pair("3", "approval_exhausted"),
            pair("4", "approval_exhausted")
        ]
    );
}

#[test]
fn a_held_agent_absent_from_the_batch_that_releases_it_keeps_its_stored_state() {
    let dir = tempfile::tempdir().unwrap();
    // After the restart only billing-bot's store holds it; the first batch is another
    // agent's, and it releases billing-bot's held event (its approval is here now).
    let mut engine = restarted_with_a_held_event(dir.path());
    run(&mut engine, &[event(3, "hr-bot", t(30), "read", "wiki", 0)]);
    assert_eq!(engine.agents_holding(), 0, "the held event was released");
    // The release used the approval's one use.
    let out = run(&mut engine, &[delete(4, 45, Some("apr-arrives-later"))]);
    assert_eq!(rules(&out), [pair("4", "approval_exhausted")]);
    engine.commit(&[(PositionKey::named("test"), 4)]).unwrap();
    let stored = engine.agent("billing-bot").unwrap().unwrap();
    assert_eq!(
        stored.baseline.events, 3,
        "billing-bot's history is its stored one and the event since, not a fresh start"
    );
}

fn agentwatch(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn lines(events: &[AgentEventV1]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

/// `replay --approvals`: every rule, the grace period both ways (an approval issued
/// after its action, an id that never comes), a bad record refused without its content,
/// and with `--trusted-key` an unsigned approval that never takes effect.
#[test]
fn replay_with_an_approvals_file_applies_every_rule_and_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let mut approvals = standard_approvals();
    approvals.push(approval(
        "apr-skew",
        "billing-bot",
        "null",
        t(151),
        t(600),
        1,
    ));
    approvals.push(approval(
        "apr-skew-far",
        "billing-bot",
        "null",
        t(170),
        t(600),
        1,
    ));
    approvals
        .push(r#"{"approval_id": "apr-bad", "agent_id": "SECRET-AGENT", "actions": []}"#.into());
    std::fs::write(path("approvals.jsonl"), approvals.join("\n")).unwrap();
    let mut crm = delete(4, 60, Some("apr-ok"));
    crm.system = "crm".into();
    let events = [
        delete(1, 0, None),
        delete(2, 15, Some("apr-forged")),
        delete(3, 30, Some("apr-hr")),
        crm,
        delete(5, 75, Some("apr-old")),
        delete(6, 90, Some("apr-ok")),
        delete(7, 105, Some("apr-ok")),
        delete(8, 150, Some("apr-skew")),
        delete(9, 165, Some("apr-skew-far")),
        // The input ends while this one waits: nothing can arrive any more.
        delete(10, 180, Some("apr-never")),
    ];
    std::fs::write(path("events.jsonl"), lines(&events)).unwrap();
    let output = agentwatch(
        &[
            "replay",
            "--input",
            &path("events.jsonl"),
            "--approvals",
            &path("approvals.jsonl"),
            "--approval-grace",
            "2m",
            "--output",
            &path("alerts.jsonl"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("approval record refused") && stderr.contains("missing field approved_by"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SECRET-AGENT"),
        "record content logged: {stderr}"
    );
    let fired = |file: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["detector"]["id"] == "high_risk_action")
            .map(|v| {
                (
                    v["event_ids"][0].as_str().unwrap().to_owned(),
                    v["evidence"]["context"]["rule"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        fired(&path("alerts.jsonl")),
        [
            pair("1", "approval_missing"),
            pair("2", "approval_unknown"),
            pair("3", "approval_other_agent"),
            pair("4", "approval_scope"),
            pair("5", "approval_expired"),
            pair("7", "approval_exhausted"),
            pair("9", "approval_expired"),
            pair("10", "approval_unknown"),
        ]
    );

    // Signed approvals: with a trusted key, the unsigned ones never take effect.
    let key = path("ops");
    assert!(agentwatch(&["keygen", "--out", &key], None)
        .status
        .success());
    let signed = agentwatch(
        &["sign-record", "--key", &format!("{key}.key")],
        Some(&approval(
            "apr-ok",
            "billing-bot",
            r#"["billing"]"#,
            t(-60),
            t(600),
            1,
        )),
    );
    assert!(signed.status.success());
    let unsigned = approval("apr-hr", "hr-bot", r#"["billing"]"#, t(-60), t(600), 1);
    std::fs::write(
        path("signed.jsonl"),
        format!("{}{unsigned}\n", String::from_utf8(signed.stdout).unwrap()),
    )
    .unwrap();
    let mut foreign = delete(2, 15, Some("apr-hr"));
    foreign.agent_id = "hr-bot".into();
    foreign.event_id = "billing-bot-2".into();
    std::fs::write(
        path("events2.jsonl"),
        lines(&[delete(1, 0, Some("apr-ok")), foreign]),
    )
    .unwrap();
    let output = agentwatch(
        &[
            "replay",
            "--input",
            &path("events2.jsonl"),
            "--approvals",
            &path("signed.jsonl"),
            "--trusted-key",
            &format!("{key}.pub"),
            "--output",
            &path("alerts2.jsonl"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("unsigned"), "{stderr}");
    // The signed approval covers event 1; the unsigned one is as good as none.
    assert_eq!(
        fired(&path("alerts2.jsonl")),
        [pair("2", "approval_unknown")]
    );
}

/// `validate --config` loads the registry and approvals files as `run` does, with their
/// trusted keys: an unsigned record in either is a problem with its file and line (and
/// a non-zero exit); once every record is signed, it passes and says so.
#[test]
fn validate_checks_signatures_of_the_configured_registry_and_approvals_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let key = path("ops");
    assert!(agentwatch(&["keygen", "--out", &key], None)
        .status
        .success());
    let sign = |record: &str| {
        let out = agentwatch(
            &["sign-record", "--key", &format!("{key}.key")],
            Some(record),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let agent =
        r#"{"agent_id":"billing-bot","owner":"ana@example.com","allowed_systems":["billing"]}"#;
    let rogue = r#"{"agent_id":"rogue-bot","owner":"SECRET-OWNER@example.com"}"#;
    let granted = approval("apr-ok", "billing-bot", r#"["billing"]"#, t(-60), t(600), 1);
    let forged = approval("apr-self", "SECRET-AGENT", "null", t(-60), t(600), 9);
    let write = |name: &str, text: String| std::fs::write(path(name), text).unwrap();
    write("r.json", format!("[\n{},\n{rogue}\n]\n", sign(agent)));
    write("a.jsonl", format!("{}\n{forged}\n", sign(&granted)));
    write(
        "svc.toml",
        format!(
            "[registry]\nfile = \"{}\"\ntrusted_keys = [\"{key}.pub\"]\n[approvals]\nfile = \"{}\"\ntrusted_keys = [\"{key}.pub\"]\n",
            path("r.json"),
            path("a.jsonl")
        ),
    );
    let validate = || agentwatch(&["validate", "--config", &path("svc.toml")], None);
    let refused = |out: &std::process::Output, at: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{at}: record refused (unsigned)")),
            "{stderr}"
        );
        assert!(!stderr.contains("SECRET"), "record content in: {stderr}");
    };
    refused(&validate(), &format!("{}:3", path("r.json")));
    write("r.json", format!("[\n{}\n]\n", sign(agent)));
    refused(&validate(), &format!("{}:2", path("a.jsonl")));
    write("a.jsonl", format!("{}\n", sign(&granted)));
    let out = validate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 registered agent(s), all signed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("approvals from 1 approval(s) in the file (signatures required)"),
        "{stdout}"
    );
}
