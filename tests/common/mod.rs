//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod replay;

use agentwatch::detect::DetectorSet;
use agentwatch::model::time::{format_rfc3339, parse_rfc3339, HOUR_MS};
use agentwatch::model::{decode_event, AgentEventV1, Alert, EventTime, Limits};
use agentwatch::pipeline::{Engine, EngineOptions, Outputs};
use agentwatch::state::StateStore;

/// Monday 2026-01-05 00:00 UTC.
pub fn monday() -> i64 {
    parse_rfc3339("2026-01-05T00:00:00Z").unwrap()
}

/// Builds an event.
pub fn event(
    id: u64,
    agent: &str,
    time_ms: i64,
    action: &str,
    system: &str,
    bytes: u64,
) -> AgentEventV1 {
    AgentEventV1 {
        schema_version: Some(1),
        event_id: format!("{agent}-{id}"),
        time: EventTime::Rfc3339(format_rfc3339(time_ms)),
        agent_id: agent.to_owned(),
        action: action.to_owned(),
        system: system.to_owned(),
        owner: Some("owner@example.com".into()),
        credential_id: Some(format!("cred-{agent}")),
        session_id: None,
        resource: None,
        bytes_in: bytes,
        bytes_out: 0,
        outcome: None,
        approval_id: None,
        attributes: Default::default(),
    }
}

/// An engine with the built-in detectors over a fresh RocksDB in `dir`.
/// `n` calls of `agent`, `gap_ms` apart from `start_ms`, all `action` on `system`
/// moving `bytes` (event ids from their times, so series never collide).
pub fn calls(
    agent: &str,
    start_ms: i64,
    gap_ms: i64,
    n: i64,
    action: &str,
    system: &str,
    bytes: u64,
) -> Vec<AgentEventV1> {
    (0..n)
        .map(|i| {
            let t = start_ms + i * gap_ms;
            event(t as u64, agent, t, action, system, bytes)
        })
        .collect()
}

pub fn engine(dir: &std::path::Path) -> Engine {
    engine_with_options(dir, EngineOptions::default())
}

/// An engine with the built-in detectors and `options` over a fresh RocksDB in `dir`.
pub fn engine_with_options(dir: &std::path::Path, options: EngineOptions) -> Engine {
    Engine::new(
        DetectorSet::builtin().unwrap(),
        StateStore::open(dir).unwrap(),
        options,
    )
    .unwrap()
}

/// An engine on `dir` that has already run `history` (its agents' baselines learned).
pub fn engine_with(dir: &std::path::Path, history: &[AgentEventV1]) -> Engine {
    let mut engine = engine(dir);
    run(&mut engine, history);
    engine
}

/// Runs events through the engine in batches of 256 and returns everything produced
/// (score rows, when the engine records them, index events within their batch).
pub fn run(engine: &mut Engine, events: &[AgentEventV1]) -> Outputs {
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let mut all = Outputs::default();
    for chunk in lines.chunks(256) {
        let decoded: Vec<_> = chunk
            .iter()
            .map(|l| decode_event(l.as_bytes(), &Limits::default()).unwrap())
            .collect();
        let mut out = Outputs::default();
        engine.process_batch(&decoded, &mut out).unwrap();
        all.alerts.extend(out.alerts);
        all.commands.extend(out.commands);
        all.scores.extend(out.scores);
    }
    all
}

/// A steady agent: `per_hour` calls an hour in working hours (09–17 UTC, weekdays),
/// spread over `systems`, each moving about `bytes`, for `days` days from Monday.
pub fn office_agent(
    agent: &str,
    days: i64,
    per_hour: i64,
    systems: &[&str],
    bytes: u64,
) -> Vec<AgentEventV1> {
    let mut events = Vec::new();
    let mut id = 0;
    for day in 0..days {
        if day % 7 >= 5 {
            continue;
        }
        for hour in 9..17 {
            for k in 0..per_hour {
                id += 1;
                let t = monday() + day * 24 * HOUR_MS + hour * HOUR_MS + k * HOUR_MS / per_hour;
                let system = systems[(id as usize * 7 + k as usize) % systems.len()];
                let wobble = 1 + id * 2_654_435_761 % 7;
                events.push(event(id, agent, t, "read", system, bytes * wobble / 4));
            }
        }
    }
    events
}

/// The alerts of detector instance `id`.
pub fn by_detector<'a>(alerts: &'a [Alert], id: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| a.detector.id == id).collect()
}

/// The committed schema directory.
pub fn schemas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// A validator for one committed schema, with format checks on.
pub fn validator(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(schemas_dir().join(name)).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// Fails with every schema violation of `instance`.
pub fn assert_valid(validator: &jsonschema::Validator, instance: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is invalid: {errors:?}\n{instance}"
    );
}
