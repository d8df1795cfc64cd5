//! Wire contracts: committed schemas match the Rust types, examples are valid, and every
//! alert and command the engine emits validates against its schema.

mod common;

use common::{assert_valid, schemas_dir, validator};

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
use agentwatch::app::simulate::SimReader;
use agentwatch::model::{decode_event, Limits};
use agentwatch::sim::{SimConfig, Simulation};
use serde_json::Value;

#[test]
fn committed_schemas_match_the_rust_types() {
    agentwatch::schema::check(&schemas_dir()).unwrap();
}

#[test]
fn examples_are_valid_and_event_examples_decode() {
    let mut checked = 0;
    for entry in std::fs::read_dir(schemas_dir().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let schema = [
            "agent-event",
            "alert",
            "command",
            "agent-record",
            "agent-approval",
        ]
        .into_iter()
        .find(|prefix| name.starts_with(&format!("{prefix}.")))
        .unwrap_or_else(|| panic!("{name} names no schema"));
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_valid(
            &validator(&format!("{schema}.v1.schema.json")),
            &value,
            &name,
        );
        if schema == "agent-event" {
            let compact = serde_json::to_vec(&value).unwrap();
            decode_event(&compact, &Limits::default()).unwrap();
        }
        if schema == "agent-record" {
            let records = agentwatch::identity::parse_records(&name, &text, true).unwrap();
            assert_eq!(records.len(), 1);
        }
        if schema == "agent-approval" {
            let found = agentwatch::approvals::source::parse_file_text(&text, None);
            assert!(found.problems.is_empty(), "{name}: {:?}", found.problems);
            assert_eq!(found.approvals.len(), 1, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} examples");
}

#[test]
fn schemas_reject_what_the_decoder_rejects() {
    let events = validator("agent-event.v1.schema.json");
    let missing: Value =
        serde_json::json!({"event_id": "e", "time": 1, "agent_id": "a", "action": "r"});
    assert!(!events.is_valid(&missing));
    let bad_outcome: Value = serde_json::json!({"event_id": "e", "time": 1, "agent_id": "a", "action": "r", "system": "s", "outcome": "maybe"});
    assert!(!events.is_valid(&bad_outcome));
}

#[test]
fn every_alert_and_command_the_engine_emits_is_valid() {
    let simulation = Simulation::new(SimConfig {
        agents: 40,
        days: 8,
        seed: 5,
        attacks: true,
        ..SimConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    let mut output = Vec::new();
    run_replay(
        &mut engine,
        SimReader::simulation(&simulation),
        &ReplayConfig::default(),
        ReplaySinks {
            output: &mut output,
            scores: None,
        },
        &mut |_| {},
    )
    .unwrap();
    let alerts = validator("alert.v1.schema.json");
    let commands = validator("command.v1.schema.json");
    let (mut alert_count, mut command_count) = (0, 0);
    for line in String::from_utf8(output).unwrap().lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        if value.get("alert_id").is_some() {
            assert_valid(&alerts, &value, "alert");
            alert_count += 1;
        } else {
            assert_valid(&commands, &value, "command");
            command_count += 1;
        }
    }
    assert!(
        alert_count >= 10 && command_count >= 1,
        "{alert_count} alerts, {command_count} commands"
    );
}
