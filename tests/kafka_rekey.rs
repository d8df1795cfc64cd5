//! Re-keying (`[kafka] rekey`) against a real Kafka-protocol broker (Tansu on
//! 127.0.0.1): events produced without keys or keyed by something else, each agent's
//! spread over the partitions, still meet their agent's state on one member of a group.

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agentwatch::model::AgentEventV1;
use agentwatch::sim::{SimConfig, Simulation};
use agentwatch::state::StateStore;
use kafka_support::{service_config, wait_committed, Broker, ServiceProcess, TestRecord};
use rdkafka::message::Message;

const EVENTS: &str = "agent-events";
const PARTITIONS: i32 = 3;
const GROUP: &str = "rekeyed";

#[test]
fn unkeyed_events_are_rekeyed_so_that_each_agent_is_counted_once_on_one_member() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events: Vec<AgentEventV1> = Simulation::new(SimConfig {
        agents: 30,
        days: 3,
        seed: 17,
        attacks: true,
        ..SimConfig::default()
    })
    .events()
    .collect();
    // Half without a key, half keyed by something other than the agent (the event id,
    // as a gateway keying by request would): every agent is spread over the partitions.
    let records: Vec<TestRecord> = events
        .iter()
        .enumerate()
        .map(|(index, event)| TestRecord {
            key: (index % 2 == 1).then(|| event.event_id.as_bytes().to_vec()),
            payload: serde_json::to_vec(event).unwrap(),
            ..TestRecord::default()
        })
        .collect();
    broker.produce(EVENTS, &records);
    let spread = broker.read_all(EVENTS, events.len(), Duration::from_secs(60));
    let mut partitions_of: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for message in &spread {
        let event: AgentEventV1 = serde_json::from_slice(message.payload().unwrap()).unwrap();
        partitions_of
            .entry(event.agent_id)
            .or_default()
            .insert(message.partition());
    }
    assert!(
        partitions_of.values().all(|p| p.len() > 1),
        "the input spreads every agent over several partitions: {partitions_of:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let member = |name: &str| {
        let config = service_config(&broker, &dir.path().join(name), GROUP, "").replacen(
            "[kafka.options]",
            "rekey = true\n[kafka.options]",
            1,
        );
        ServiceProcess::start(dir.path(), name, &config)
    };
    let mut first = member("first");
    let mut second = member("second");
    let repartition = format!("{GROUP}-repartition");
    wait_committed(
        &broker,
        GROUP,
        &repartition,
        PARTITIONS,
        events.len(),
        &[&first, &second],
    );
    wait_committed(
        &broker,
        &format!("{GROUP}-rekey"),
        EVENTS,
        PARTITIONS,
        events.len(),
        &[&first, &second],
    );
    for member in [&mut first, &mut second] {
        member.signal(libc::SIGTERM);
        assert!(
            member.wait(Duration::from_secs(60)).success(),
            "{}",
            member.log()
        );
    }

    // Every event forwarded once, keyed by its agent, each agent on one partition.
    let forwarded = broker.read_all(&repartition, events.len(), Duration::from_secs(60));
    assert_eq!(
        forwarded.len(),
        events.len(),
        "every event forwarded exactly once"
    );
    let mut partition_of: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for message in &forwarded {
        let event: AgentEventV1 = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(
            message.key(),
            Some(event.agent_id.as_bytes()),
            "keyed by agent"
        );
        partition_of
            .entry(event.agent_id)
            .or_default()
            .insert(message.partition());
    }
    assert!(
        partition_of.values().all(|p| p.len() == 1),
        "each agent's events on one partition: {partition_of:?}"
    );

    // Every event counted once, on the member that holds the agent's partition (the
    // other may keep an older copy from before the second member joined).
    let stores = [
        StateStore::open(&dir.path().join("first")).unwrap(),
        StateStore::open(&dir.path().join("second")).unwrap(),
    ];
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &events {
        *expected.entry(event.agent_id.as_str()).or_default() += 1;
    }
    for (agent, count) in expected {
        let counted = stores
            .iter()
            .map(|store| {
                store
                    .load_agent(agent)
                    .unwrap()
                    .map_or(0, |state| state.baseline.events)
            })
            .max()
            .unwrap_or(0);
        assert_eq!(
            counted,
            count,
            "{agent}: every event counted once; logs:\n{}\n-----\n{}",
            first.log(),
            second.log()
        );
    }
}
