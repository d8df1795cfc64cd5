//! The registry in `agentwatch run` against a real Kafka-protocol broker: identities come
//! from a registry file and the compacted registry topic, changes to either take effect
//! without a restart, owners come from the registry, and commands are signed.

mod common;
mod kafka_support;

use std::collections::BTreeSet;
use std::time::Duration;

use agentwatch::model::time::HOUR_MS;
use agentwatch::model::{Alert, Command};
use agentwatch::signing::{write_key_pair, Verifier};
use kafka_support::{service_config, Broker, ServiceProcess, TestRecord};
use rdkafka::message::Message;

const EVENTS: &str = "agent-events";
const REGISTRY: &str = "agent-registry";

fn event(id: u32, agent: &str, hour: i64, system: &str) -> TestRecord {
    let time = common::monday() + 10 * HOUR_MS + hour * HOUR_MS;
    let e = common::event(u64::from(id), agent, time, "read", system, 10);
    TestRecord::keyed(agent, serde_json::to_vec(&e).unwrap())
}

fn record(agent: &str, owner: &str, systems: &[&str]) -> TestRecord {
    let value =
        serde_json::json!({ "agent_id": agent, "owner": owner, "allowed_systems": systems });
    TestRecord::keyed(agent, value.to_string().into_bytes())
}

fn tombstone(agent: &str) -> TestRecord {
    TestRecord {
        key: Some(agent.as_bytes().to_vec()),
        payload: Vec::new(),
        headers: None,
    }
}

fn registry_file(owner_systems: &[&str]) -> String {
    format!(
        "[[agent]]\nagent_id = \"beta\"\nowner = \"bo@example.com\"\nallowed_systems = {owner_systems:?}\n"
    )
}

/// (agent, detector id) of every policy alert on the alerts topic.
fn policy_alerts(broker: &Broker, at_least: usize) -> Vec<(String, String, Option<String>)> {
    broker
        .read_all("agent-alerts", at_least, Duration::from_secs(30))
        .iter()
        .map(|m| serde_json::from_slice::<Alert>(m.payload().unwrap()).unwrap())
        .filter(|a| ["unregistered_agent", "scope_violation"].contains(&a.detector.id.as_str()))
        .map(|a| (a.agent_id, a.detector.id, a.owner))
        .collect()
}

#[test]
fn registry_file_and_topic_changes_take_effect_without_a_restart() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topics(&[REGISTRY], 1);
    broker.produce(REGISTRY, &[record("alpha", "ana@example.com", &["crm"])]);
    let registry_path = dir.path().join("registry.toml");
    std::fs::write(&registry_path, registry_file(&["crm"])).unwrap();
    let keys = write_key_pair(&dir.path().join("signing")).unwrap();
    let extra = format!(
        "[registry]\nfile = \"{}\"\ntopic = \"{REGISTRY}\"\n[signing]\nkey_file = \"{}\"\n",
        registry_path.display(),
        keys.secret.display()
    );
    let config = service_config(&broker, &dir.path().join("state"), "registry-test", &extra);
    let mut service = ServiceProcess::start(dir.path(), "service", &config);
    service.wait_for_metric("agentwatch_registry_agents", 2.0, Duration::from_secs(60));

    broker.produce(
        EVENTS,
        &[
            event(1, "alpha", 0, "crm"),
            event(2, "beta", 0, "crm"),
            event(3, "gamma", 0, "crm"),
            event(4, "alpha", 1, "hr.payroll"),
            event(5, "beta", 1, "hr.payroll"),
        ],
    );
    let before: BTreeSet<_> = policy_alerts(&broker, 3).into_iter().collect();
    let expected: BTreeSet<_> = [
        ("gamma", "unregistered_agent", Some("owner@example.com")),
        ("alpha", "scope_violation", Some("ana@example.com")),
        ("beta", "scope_violation", Some("bo@example.com")),
    ]
    .into_iter()
    .map(|(a, d, o)| (a.to_owned(), d.to_owned(), o.map(str::to_owned)))
    .collect();
    assert_eq!(before, expected, "{}", service.log());

    // Register gamma and remove alpha on the topic; widen beta's boundary in the file.
    broker.produce(
        REGISTRY,
        &[
            record("gamma", "cy@example.com", &["crm"]),
            tombstone("alpha"),
        ],
    );
    std::fs::write(&registry_path, registry_file(&["crm", "hr.*"])).unwrap();
    service.wait_for_metric(
        "agentwatch_registry_changes_total{source=\"topic\"}",
        2.0,
        Duration::from_secs(30),
    );
    service.wait_for_metric(
        "agentwatch_registry_reloads_total{result=\"applied\"}",
        1.0,
        Duration::from_secs(30),
    );
    broker.produce(
        EVENTS,
        &[
            event(6, "gamma", 3, "hr.payroll"),
            event(7, "alpha", 3, "crm"),
            event(8, "beta", 3, "hr.payroll"),
        ],
    );
    let after: BTreeSet<_> = policy_alerts(&broker, 5).into_iter().collect();
    let new: Vec<_> = after.difference(&before).cloned().collect();
    assert_eq!(
        new,
        [
            (
                "alpha".to_owned(),
                "unregistered_agent".to_owned(),
                Some("owner@example.com".to_owned())
            ),
            (
                "gamma".to_owned(),
                "scope_violation".to_owned(),
                Some("cy@example.com".to_owned())
            ),
        ],
        "gamma is now registered (its boundary applies), alpha is not, beta may touch hr.*\n{}",
        service.log()
    );

    let verifier = Verifier::load(&keys.public).unwrap();
    let commands = broker.read_all("agent-commands", 4, Duration::from_secs(30));
    assert!(commands.len() >= 4);
    for message in &commands {
        let text = std::str::from_utf8(message.payload().unwrap()).unwrap();
        let command: Command = serde_json::from_str(text).unwrap();
        let issued = agentwatch::model::time::parse_rfc3339(&command.time).unwrap();
        assert_eq!(
            verifier.verify(text, issued),
            Ok(command.command_id.clone())
        );
    }

    service.signal(libc::SIGTERM);
    assert!(
        service.wait(Duration::from_secs(60)).success(),
        "{}",
        service.log()
    );
}
