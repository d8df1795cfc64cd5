//! The identity and policy layer through the whole engine: each policy kind fires on
//! what it must and stays silent on what it must not, owners come from the registry,
//! repeat offenders escalate, registry changes apply mid-stream, and commands are signed.

mod common;

use agentwatch::identity::{parse_records, AgentRecord, AgentRecordV1, Registry, RegistryUpdate};
use agentwatch::model::time::{parse_rfc3339, HOUR_MS};
use agentwatch::model::{AgentEventV1, Alert, CommandAction, Outcome};
use agentwatch::pipeline::{Engine, Outputs};
use agentwatch::signing::{Signer, Verifier};
use common::{event, monday, office_agent, run};

const REGISTRY: &str = r#"
[[agent]]
agent_id = "billing-bot"
owner = "ana@example.com"
allowed_systems = ["billing", "crm", "s3://reports/*"]
allowed_actions = ["read", "write", "delete", "tool_call:refund"]
high_risk_actions = ["tool_call:refund"]
credentials = [
  { id = "cred-billing-bot", issued_at = "2026-01-01T00:00:00Z", expires_at = "2026-02-01T00:00:00Z" },
  { id = "cred-old", issued_at = "2025-06-01T00:00:00Z", expires_at = "2026-01-02T00:00:00Z" },
]

[[agent]]
agent_id = "intern-bot"
owner = "bo@example.com"
tier = "restricted"
credentials = [{ id = "cred-intern-bot", issued_at = "2026-01-01T00:00:00Z" }]
working_hours = { days = ["mon", "tue", "wed", "thu", "fri"], start = "09:00", end = "17:00" }
"#;

fn registry() -> Registry {
    Registry::new(parse_records("test.toml", REGISTRY, false).unwrap())
}

fn engine_with_registry(dir: &std::path::Path) -> Engine {
    common::engine(dir).with_registry(registry())
}

fn at(hours: i64) -> i64 {
    monday() + 10 * HOUR_MS + hours * HOUR_MS
}

fn alerts_of<'a>(out: &'a Outputs, detector: &str) -> Vec<&'a Alert> {
    out.alerts
        .iter()
        .filter(|a| a.detector.id == detector)
        .collect()
}

fn with(mut event: AgentEventV1, change: impl FnOnce(&mut AgentEventV1)) -> AgentEventV1 {
    change(&mut event);
    event
}

const POLICY: [&str; 5] = [
    "unregistered_agent",
    "scope_violation",
    "high_risk_action",
    "credential_misuse",
    "credential_age",
];

fn policy_alerts(out: &Outputs) -> Vec<String> {
    out.alerts
        .iter()
        .filter(|a| POLICY.contains(&a.detector.id.as_str()))
        .map(|a| format!("{}: {}", a.detector.id, a.summary))
        .collect()
}

#[test]
fn unregistered_agent_fires_for_unknown_and_ownerless_agents_and_only_with_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let out = run(
        &mut engine,
        &[
            event(1, "ghost", at(0), "read", "crm", 10),
            event(2, "billing-bot", at(0), "read", "billing", 10),
        ],
    );
    let fired = alerts_of(&out, "unregistered_agent");
    assert_eq!(fired.len(), 1, "{:?}", policy_alerts(&out));
    assert_eq!(fired[0].agent_id, "ghost");
    assert!(fired[0].summary.contains("not in the agent registry"));
    assert_eq!(out.commands[0].action, CommandAction::RequireApproval);

    // An agent registered without an owner (as the registry topic may deliver) is flagged.
    let mut ownerless: AgentRecordV1 =
        serde_json::from_str(r#"{"agent_id":"orphan","owner":""}"#).unwrap();
    ownerless.description = Some("nobody owns me".into());
    engine.apply(RegistryUpdate::Upsert(Box::new(
        AgentRecord::compile(ownerless, false).unwrap(),
    )));
    let out = run(&mut engine, &[event(3, "orphan", at(1), "read", "crm", 10)]);
    let fired = alerts_of(&out, "unregistered_agent");
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0].summary.contains("without an owner"),
        "{}",
        fired[0].summary
    );

    // Without a registry agentwatch stays purely behavioural.
    let other = tempfile::tempdir().unwrap();
    let mut plain = common::engine(other.path());
    let out = run(&mut plain, &[event(1, "ghost", at(0), "read", "crm", 10)]);
    assert!(policy_alerts(&out).is_empty(), "{:?}", policy_alerts(&out));
}

#[test]
fn scope_violations_name_the_rule_and_owner_and_repeat_offenders_escalate() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let inside = run(
        &mut engine,
        &[
            event(1, "billing-bot", at(0), "read", "billing", 10),
            event(2, "billing-bot", at(0) + 1, "read", "s3://reports/q1", 10),
            // intern-bot declares no systems or actions: those are not checked.
            event(3, "intern-bot", at(0), "read", "anything", 10),
        ],
    );
    assert!(
        policy_alerts(&inside).is_empty(),
        "{:?}",
        policy_alerts(&inside)
    );

    let violations: Vec<AgentEventV1> = (0..5)
        .map(|i| {
            event(
                10 + i as u64,
                "billing-bot",
                at(1) + i * 6 * 60_000,
                "read",
                "hr.payroll",
                10,
            )
        })
        .collect();
    let out = run(&mut engine, &violations);
    let fired = alerts_of(&out, "scope_violation");
    assert_eq!(fired.len(), 5, "one per violation outside the 5m cooldown");
    let first = fired[0];
    assert_eq!(
        first.owner.as_deref(),
        Some("ana@example.com"),
        "the registry's owner, not the event's claim"
    );
    assert!(
        first
            .summary
            .contains("hr.payroll, outside its allowed systems (billing, crm, s3://reports/*)"),
        "{}",
        first.summary
    );
    assert_eq!(
        first.evidence.context["rule"],
        "system outside allowed_systems"
    );
    assert_eq!(
        first.evidence.context["allowed_systems"],
        "billing, crm, s3://reports/*"
    );
    let actions: Vec<CommandAction> = out.commands.iter().map(|c| c.action).collect();
    assert_eq!(
        actions,
        [
            CommandAction::RequireApproval,
            CommandAction::RevokeCredential,
            CommandAction::SuspendAgent
        ],
        "repeated violations escalate"
    );
    assert!(out
        .commands
        .iter()
        .all(|c| c.owner.as_deref() == Some("ana@example.com")));

    let action = run(
        &mut engine,
        &[event(
            20,
            "billing-bot",
            at(3),
            "tool_call:shell",
            "billing",
            10,
        )],
    );
    let fired = alerts_of(&action, "scope_violation");
    assert_eq!(fired.len(), 1);
    assert_eq!(
        fired[0].evidence.context["rule"],
        "action outside allowed_actions"
    );
}

#[test]
fn high_risk_actions_need_an_approval_while_routine_ones_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let approved = |id, t, agent: &str, action: &str| {
        with(event(id, agent, t, action, "billing", 10), |e| {
            e.approval_id = Some("chg-42".into())
        })
    };
    let out = run(
        &mut engine,
        &[
            approved(1, at(0), "billing-bot", "delete"),
            event(2, "billing-bot", at(0), "write", "billing", 10),
            approved(3, at(0), "intern-bot", "write"),
        ],
    );
    assert!(alerts_of(&out, "high_risk_action").is_empty());

    let unapproved = [
        event(10, "billing-bot", at(1), "delete", "billing", 0),
        // On the agent's own list.
        event(11, "billing-bot", at(2), "tool_call:refund", "billing", 0),
        // Routine for a standard agent, high-risk for a restricted one.
        event(12, "intern-bot", at(1), "write", "billing", 0),
    ];
    let out = run(&mut engine, &unapproved);
    let fired = alerts_of(&out, "high_risk_action");
    let who: Vec<(&str, &str)> = fired
        .iter()
        .map(|a| (a.agent_id.as_str(), a.evidence.context["action"].as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("billing-bot", "delete"),
            ("billing-bot", "tool_call:refund"),
            ("intern-bot", "write")
        ]
    );
    assert!(fired[0].summary.contains("global high-risk list"));
    assert!(fired[1].summary.contains("own high-risk list"));
    assert!(fired[2].summary.contains("restricted-tier"));
    let requested: Vec<CommandAction> = out.commands.iter().map(|c| c.action).collect();
    assert!(
        requested
            .iter()
            .all(|a| *a == CommandAction::RequireApproval),
        "{requested:?}"
    );
    assert!(requested.len() >= 2);
}

#[test]
fn credential_misuse_catches_wrong_agent_expired_shared_and_old_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let using = |id, agent: &str, t, credential: &str| {
        with(event(id, agent, t, "read", "billing", 10), |e| {
            e.credential_id = Some(credential.into())
        })
    };
    let clean = run(
        &mut engine,
        &[
            using(1, "billing-bot", at(0), "cred-billing-bot"),
            using(2, "intern-bot", at(0), "cred-intern-bot"),
        ],
    );
    assert!(
        policy_alerts(&clean).is_empty(),
        "{:?}",
        policy_alerts(&clean)
    );

    let out = run(
        &mut engine,
        &[
            using(3, "intern-bot", at(1), "cred-billing-bot"),
            using(4, "billing-bot", at(1), "cred-old"),
        ],
    );
    let fired = alerts_of(&out, "credential_misuse");
    assert_eq!(fired.len(), 2);
    assert!(
        fired[0].summary.contains("which was issued to billing-bot"),
        "{}",
        fired[0].summary
    );
    assert_eq!(fired[0].evidence.context["issued_to"], "billing-bot");
    assert!(
        fired[1].summary.contains("after it expired at 2026-01-02"),
        "{}",
        fired[1].summary
    );
    let revoked: Vec<(&str, Option<&str>)> = out
        .commands
        .iter()
        .map(|c| (c.agent_id.as_str(), c.credential_id.as_deref()))
        .collect();
    assert_eq!(
        revoked,
        [
            ("intern-bot", Some("cred-billing-bot")),
            ("billing-bot", Some("cred-old"))
        ]
    );
    assert!(out
        .commands
        .iter()
        .all(|c| c.action == CommandAction::RevokeCredential));

    // intern-bot's credential never expires: past 90 days it is a permanent secret.
    let old = run(
        &mut engine,
        &[using(
            5,
            "intern-bot",
            at(0) + 100 * 24 * HOUR_MS,
            "cred-intern-bot",
        )],
    );
    let fired = alerts_of(&old, "credential_age");
    assert_eq!(fired.len(), 1, "{:?}", policy_alerts(&old));
    assert!(
        fired[0].summary.contains("older than the 90d allowed"),
        "{}",
        fired[0].summary
    );

    // Without a registry, sharing is learned from traffic: the second agent is flagged.
    let other = tempfile::tempdir().unwrap();
    let mut plain = common::engine(other.path());
    let out = run(
        &mut plain,
        &[
            using(1, "a", at(0), "shared-key"),
            using(2, "a", at(0) + 1000, "shared-key"),
            using(3, "b", at(1), "shared-key"),
        ],
    );
    let fired = alerts_of(&out, "credential_misuse");
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].agent_id, "b");
    assert!(
        fired[0].summary.contains("which a has used since"),
        "{}",
        fired[0].summary
    );
}

#[test]
fn the_credential_ledger_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = |id, agent: &str, t| {
        with(event(id, agent, t, "read", "crm", 10), |e| {
            e.credential_id = Some("k".into())
        })
    };
    {
        let mut engine = common::engine(dir.path());
        run(&mut engine, &[first(1, "a", at(0))]);
        engine.commit(&[]).unwrap();
    }
    let mut engine = common::engine(dir.path());
    let out = run(&mut engine, &[first(2, "b", at(1))]);
    assert_eq!(alerts_of(&out, "credential_misuse").len(), 1);
}

/// Declared working hours are a fact, like the registry's other rules: a new agent's
/// first night out of them alerts, though `off_hours` is still warming up (200 events,
/// 72 hours) and judges no learned hour yet.
#[test]
fn a_new_agent_outside_its_declared_hours_alerts_on_its_first_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let out = run(
        &mut engine,
        &[
            event(
                1,
                "intern-bot",
                monday() + 10 * HOUR_MS,
                "read",
                "docs",
                1000,
            ),
            event(
                2,
                "intern-bot",
                monday() + 21 * HOUR_MS,
                "read",
                "docs",
                1000,
            ),
        ],
    );
    let fired = alerts_of(&out, "off_hours");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].time, "2026-01-05T21:00:00.000Z");
}

#[test]
fn off_hours_fires_outside_declared_working_hours_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    // Four weekdays of 09-17 work pass warm-up (200 events, 72 hours) without alerts.
    let history = office_agent("intern-bot", 4, 10, &["docs"], 1000);
    let out = run(&mut engine, &history);
    assert!(alerts_of(&out, "off_hours").is_empty());
    let friday = monday() + 4 * 24 * HOUR_MS;
    let out = run(
        &mut engine,
        &[
            event(
                900,
                "intern-bot",
                friday + 10 * HOUR_MS,
                "read",
                "docs",
                1000,
            ),
            event(
                901,
                "intern-bot",
                friday + 20 * HOUR_MS,
                "read",
                "docs",
                1000,
            ),
        ],
    );
    let fired = alerts_of(&out, "off_hours");
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0]
            .summary
            .contains("outside its declared working hours (09:00-17:00)"),
        "{}",
        fired[0].summary
    );
    assert_eq!(fired[0].time, "2026-01-09T20:00:00.000Z");
}

#[test]
fn a_burst_of_denials_is_flagged_and_scattered_failures_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    // Two days of work in which every 40th call fails.
    let mut history = office_agent("prober", 2, 60, &["crm"], 1000);
    for (i, e) in history.iter_mut().enumerate() {
        if i % 40 == 0 {
            e.outcome = Some(Outcome::Failure);
        }
    }
    let out = run(&mut engine, &history);
    assert!(alerts_of(&out, "denied_burst").is_empty());
    let wednesday = monday() + 2 * 24 * HOUR_MS + 11 * HOUR_MS;
    let burst: Vec<AgentEventV1> = (0..12)
        .map(|i| {
            with(
                event(
                    5000 + i as u64,
                    "prober",
                    wednesday + i * 10_000,
                    "read",
                    "hr",
                    0,
                ),
                |e| e.outcome = Some(Outcome::Denied),
            )
        })
        .collect();
    let out = run(&mut engine, &burst);
    let fired = alerts_of(&out, "denied_burst");
    assert_eq!(fired.len(), 1, "one alert, then the cooldown");
    assert!(
        fired[0]
            .summary
            .contains("denied or failed calls within 5m"),
        "{}",
        fired[0].summary
    );
}

#[test]
fn registry_changes_take_effect_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let out = run(
        &mut engine,
        &[event(1, "late-bot", at(0), "read", "crm", 10)],
    );
    assert_eq!(alerts_of(&out, "unregistered_agent").len(), 1);

    let record: AgentRecordV1 = serde_json::from_str(
        r#"{"agent_id":"late-bot","owner":"cy@example.com","allowed_systems":["crm"]}"#,
    )
    .unwrap();
    engine.apply(RegistryUpdate::Upsert(Box::new(
        AgentRecord::compile(record, true).unwrap(),
    )));
    let out = run(
        &mut engine,
        &[
            event(2, "late-bot", at(2), "read", "crm", 10),
            event(3, "late-bot", at(3), "read", "hr.payroll", 10),
        ],
    );
    assert!(alerts_of(&out, "unregistered_agent").is_empty());
    let fired = alerts_of(&out, "scope_violation");
    assert_eq!(fired.len(), 1, "the new boundary applies at once");
    assert_eq!(fired[0].owner.as_deref(), Some("cy@example.com"));

    engine.apply(RegistryUpdate::Remove("late-bot".into()));
    let out = run(
        &mut engine,
        &[event(4, "late-bot", at(5), "read", "crm", 10)],
    );
    assert_eq!(
        alerts_of(&out, "unregistered_agent").len(),
        1,
        "a tombstone unregisters"
    );
}

#[test]
fn commands_are_signed_and_verify_against_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::from_seed([3; 32]);
    let verifier = Verifier::new(signer.public_key());
    let mut engine = engine_with_registry(dir.path()).with_signer(std::sync::Arc::new(signer));
    let out = run(
        &mut engine,
        &[event(1, "billing-bot", at(0), "read", "hr.payroll", 10)],
    );
    assert!(!out.commands.is_empty());
    let schema = common::validator("command.v1.schema.json");
    let before_expiry = parse_rfc3339("2026-01-05T10:30:00Z").unwrap();
    for command in &out.commands {
        let text = serde_json::to_string(command).unwrap();
        common::assert_valid(
            &schema,
            &serde_json::from_str(&text).unwrap(),
            "signed command",
        );
        assert_eq!(
            verifier.verify(&text, before_expiry),
            Ok(command.command_id.clone())
        );
        let forged = text.replace("billing-bot", "other-bot");
        assert!(verifier.verify(&forged, before_expiry).is_err());
    }
}

#[test]
fn a_registry_built_from_topic_records_flags_no_unknown_agent_unless_enforced() {
    let record = || {
        let spec: AgentRecordV1 = serde_json::from_str(
            r#"{"agent_id":"billing-bot","owner":"ana@example.com","allowed_systems":["billing"]}"#,
        )
        .unwrap();
        RegistryUpdate::Upsert(Box::new(AgentRecord::compile(spec, false).unwrap()))
    };
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    engine.apply(record());
    engine.apply(RegistryUpdate::Remove("someone-else".into()));
    let out = run(
        &mut engine,
        &[
            event(1, "ghost", at(0), "read", "crm", 10),
            event(2, "billing-bot", at(0), "read", "hr.payroll", 10),
        ],
    );
    assert!(
        alerts_of(&out, "unregistered_agent").is_empty(),
        "a record or tombstone must not switch enforcement on: {:?}",
        policy_alerts(&out)
    );
    // The record still speaks for the agent it names: its owner and its boundary.
    let fired = alerts_of(&out, "scope_violation");
    assert_eq!(fired.len(), 1, "{:?}", policy_alerts(&out));
    assert_eq!(fired[0].agent_id, "billing-bot");
    assert_eq!(fired[0].owner.as_deref(), Some("ana@example.com"));

    // Enforced explicitly, the same record leaves the unknown agent flagged.
    let dir = tempfile::tempdir().unwrap();
    let mut enforced =
        common::engine(dir.path()).with_registry(Registry::default().with_enforce(true));
    enforced.apply(record());
    let out = run(
        &mut enforced,
        &[
            event(1, "ghost", at(0), "read", "crm", 10),
            event(2, "billing-bot", at(0), "read", "billing", 10),
        ],
    );
    let fired = alerts_of(&out, "unregistered_agent");
    assert_eq!(fired.len(), 1, "{:?}", policy_alerts(&out));
    assert_eq!(fired[0].agent_id, "ghost");

    // And a registry file that is not enforced flags nobody for being absent from it.
    let dir = tempfile::tempdir().unwrap();
    let mut lenient = common::engine(dir.path()).with_registry(registry().with_enforce(false));
    let out = run(&mut lenient, &[event(1, "ghost", at(0), "read", "crm", 10)]);
    assert!(alerts_of(&out, "unregistered_agent").is_empty());
}

/// Replays `events` (as JSON lines) in batches of `batch_size`; returns the output
/// lines followed by the score rows.
fn replay_events(engine: &mut Engine, events: &[AgentEventV1], batch_size: usize) -> Vec<String> {
    use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
    let input: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    let mut output = Vec::new();
    let mut scores = Vec::new();
    let summary = run_replay(
        engine,
        input.as_bytes(),
        &ReplayConfig {
            batch_size,
            ..ReplayConfig::default()
        },
        ReplaySinks {
            output: &mut output,
            scores: Some(&mut scores),
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.invalid(), 0, "{}", summary.render());
    output.extend(scores);
    String::from_utf8(output)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An engine with the test registry that records every score.
fn scoring_engine(dir: &std::path::Path) -> Engine {
    use agentwatch::pipeline::EngineOptions;
    Engine::new(
        agentwatch::detect::DetectorSet::builtin().unwrap(),
        agentwatch::state::StateStore::open(dir).unwrap(),
        EngineOptions {
            record_scores: true,
            ..EngineOptions::default()
        },
    )
    .unwrap()
    .with_registry(registry())
}

#[test]
fn a_late_event_is_answered_by_a_command_that_outlives_the_processing_time() {
    // billing-bot works Monday to Wednesday; then an event of an unknown agent arrives,
    // dated Monday 10:00: two days late, within the 7-day bound.
    let mut events = office_agent("billing-bot", 3, 4, &["billing"], 1000);
    let watermark = parse_rfc3339(match &events.last().unwrap().time {
        agentwatch::model::EventTime::Rfc3339(text) => text,
        other => panic!("{other:?}"),
    })
    .unwrap();
    let late = at(0);
    events.push(event(1, "ghost", late, "read", "crm", 10));
    events.push(event(
        9001,
        "billing-bot",
        watermark + 60_000,
        "read",
        "billing",
        10,
    ));
    assert!(
        late + HOUR_MS < watermark,
        "event time alone would give a dead command"
    );

    let dir = tempfile::tempdir().unwrap();
    let lines = replay_events(&mut scoring_engine(dir.path()), &events, 1024);
    let commands: Vec<agentwatch::model::Command> = lines
        .iter()
        .filter(|l| l.contains("\"command_id\"") && l.contains("\"ghost\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!commands.is_empty(), "{lines:?}");
    for command in &commands {
        assert_eq!(
            parse_rfc3339(&command.time),
            Some(late),
            "the command is dated by its event"
        );
        let expires = parse_rfc3339(&command.expires_at).unwrap();
        assert!(
            expires > watermark,
            "{} expires before the processing time",
            command.expires_at
        );
    }
    assert_eq!(
        commands[0].expires_at,
        agentwatch::model::time::format_rfc3339(watermark + HOUR_MS),
        "require_approval lasts an hour from the processing time"
    );

    // Neither the processing time of each event nor the score rows (which name events
    // by their place in a batch) depend on how the input is batched.
    let score_rows = lines.iter().filter(|l| l.starts_with("ghost-1,")).count();
    assert!(score_rows > 0, "scores were recorded");
    let dir = tempfile::tempdir().unwrap();
    let one_by_one = replay_events(&mut scoring_engine(dir.path()), &events, 1);
    assert_eq!(one_by_one, lines);
    let dir = tempfile::tempdir().unwrap();
    let sevens = replay_events(&mut scoring_engine(dir.path()), &events, 7);
    assert_eq!(sevens, lines);
}

#[test]
fn without_a_processing_time_expiry_counts_from_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with_registry(dir.path());
    let out = run(&mut engine, &[event(1, "ghost", at(0), "read", "crm", 10)]);
    assert_eq!(
        parse_rfc3339(&out.commands[0].expires_at),
        Some(at(0) + HOUR_MS)
    );
    engine.set_processing_ms(Some(at(5)));
    let out = run(&mut engine, &[event(2, "ghost2", at(1), "read", "crm", 10)]);
    assert_eq!(
        parse_rfc3339(&out.commands[0].expires_at),
        Some(at(5) + HOUR_MS)
    );
    // A processing time earlier than the event changes nothing.
    engine.set_processing_ms(Some(at(0)));
    let out = run(&mut engine, &[event(3, "ghost3", at(6), "read", "crm", 10)]);
    assert_eq!(
        parse_rfc3339(&out.commands[0].expires_at),
        Some(at(6) + HOUR_MS)
    );
}
