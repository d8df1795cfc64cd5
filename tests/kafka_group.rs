//! Scale-out against a real Kafka-protocol broker (Tansu on 127.0.0.1): several
//! `agentwatch run` processes in one consumer group, members killed and replaced
//! mid-stream, and agent state that moves with its partition through the changelog.

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use agentwatch::config::{KafkaConfig, ServiceConfig};
use agentwatch::kafka::stream::{stream_events, StreamTarget};
use agentwatch::model::{AgentEventV1, Alert};
use agentwatch::state::changelog::{position_value, state_value, POSITION_KEY};
use agentwatch::state::StateStore;
use kafka_support::{metric, service_config, simulated, Broker, ServiceProcess, TestRecord};
use rdkafka::message::Message;

const EVENTS: &str = "agent-events";
const PARTITIONS: i32 = 4;
const RESTORED: &str = "agentwatch_changelog_restored_agents_total";

/// Produces events keyed by agent, as `simulate --to-kafka` does.
fn stream(brokers: &str, events: &[AgentEventV1]) {
    let target = StreamTarget {
        kafka: KafkaConfig {
            brokers: brokers.to_owned(),
            ..ServiceConfig::default().kafka
        },
        topic: EVENTS.into(),
        rate: None,
    };
    let sent = stream_events(events.iter().cloned(), &target, &mut |_, _| {}).unwrap();
    assert_eq!(sent, events.len() as u64);
}

/// A member of `group`, publishing to the group's own output topics.
fn member(broker: &Broker, dir: &Path, group: &str, name: &str) -> ServiceProcess {
    let extra = format!(
        "[kafka.topics]\nalerts = \"{group}-alerts\"\ncommands = \"{group}-commands\"\ndlq = \"{group}-dlq\"\n"
    );
    let config = service_config(broker, &dir.join(name), group, "").replacen(
        "[kafka.options]",
        &format!("{extra}[kafka.options]"),
        1,
    );
    ServiceProcess::start(dir, name, &config)
}

fn wait_committed(broker: &Broker, group: &str, total: usize, members: &[&ServiceProcess]) {
    kafka_support::wait_committed(broker, group, EVENTS, PARTITIONS, total, members);
}

/// Every alert published on `topic` by id, each with what a failure message needs to
/// say which alert it is (detector, agent, event time, summary).
fn alerts(broker: &Broker, topic: &str) -> BTreeMap<String, String> {
    broker
        .read_all(topic, broker.records_in(topic), Duration::from_secs(60))
        .iter()
        .map(|m| {
            let alert: Alert = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
            let what = format!(
                "{} {} {} {}",
                alert.detector.id, alert.agent_id, alert.time, alert.summary
            );
            (alert.alert_id, what)
        })
        .collect()
}

#[test]
fn a_member_killed_and_replaced_with_an_empty_disk_publishes_what_one_instance_does() {
    let (expected, published) = killed_and_replaced(&simulated(80, 14, 23));
    let extra = nothing_missing(&expected, &published);
    assert!(
        extra.len() * 200 <= expected.len(),
        "{} extra alerts (more than 0.5% of {}): {extra:?}",
        extra.len(),
        expected.len()
    );
}

/// Around a rollout and an outage the group loses no agent's alert. What differs is
/// confined to the fleet patterns' systems: members consume side by side, each at its
/// own pace, and on a backlog one can judge a first use or a failure before another
/// member's sightings of the same pattern reach it (the README's limit of fleet
/// context in a group). Measured here: 0 to 5 extra alerts of 57 or 58, all
/// `new_system` or `denied_burst` alerts on the rolled-out or the failing system.
/// Before session 34, in a few runs on a cold or loaded machine, the outage's fleet
/// alert was announced only under another episode's id; a member holding the
/// episode's first sightings now announces it on merging that late announcement
/// (`FleetContext::announce_late`), unless that member is the one killed.
#[test]
fn a_group_around_a_rollout_and_an_outage_loses_no_agent_alert_and_differs_only_on_the_patterns() {
    let scenario: agentwatch::sim::Scenario = "strong,rollout,outage".parse().unwrap();
    let simulation = agentwatch::sim::Simulation::new(agentwatch::sim::SimConfig {
        agents: 80,
        days: 14,
        seed: 23,
        attacks: true,
        scenario,
    });
    let changed: Vec<String> = simulation
        .changes()
        .iter()
        .filter_map(|change| change.system.clone())
        .collect();
    assert_eq!(changed.len(), 2, "a rolled-out and a failing system");
    let (expected, published) = killed_and_replaced(&simulation.events().collect::<Vec<_>>());
    let (missing, extra) = (
        only_in(&expected, &published),
        only_in(&published, &expected),
    );
    // For the record (the README's limit quotes these counts).
    eprintln!(
        "group against one instance: {} alerts, {} missing {missing:?}, {} extra {extra:?}",
        expected.len(),
        missing.len(),
        extra.len()
    );
    // No agent's alert is lost. A fleet alert may be: a member that lacked the
    // episode's first sighting announces the same pattern under another episode's
    // name (the README's limit), and then the group must have announced that pattern
    // on that system itself.
    let fleet = |what: &str| what.contains("one fleet-wide change");
    let lost: Vec<&String> = missing
        .into_iter()
        .filter(|what| {
            let detector = what.split(' ').next().unwrap_or_default();
            let announced_again = changed.iter().any(|system| {
                what.contains(system.as_str())
                    && published.values().any(|other| {
                        fleet(other)
                            && other.starts_with(&format!("{detector} "))
                            && other.contains(system.as_str())
                    })
            });
            !(fleet(what) && announced_again)
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} alerts missing: {lost:?}",
        lost.len(),
        expected.len()
    );
    // A first use of the rolled-out system, a burst of failures on the failing one, or
    // the fleet alert of either: what a member judges before another member's sightings
    // reach it. Anything else, or more than a handful, is not that limit.
    let elsewhere: Vec<&&String> = extra
        .iter()
        .filter(|what| {
            let pattern_kind = what.starts_with("new_system ") || what.starts_with("denied_burst ");
            !(pattern_kind && changed.iter().any(|system| what.contains(system.as_str())))
        })
        .collect();
    assert!(
        elsewhere.is_empty(),
        "extra alerts away from the fleet patterns on {changed:?}: {elsewhere:?}"
    );
    assert!(
        extra.len() <= 8,
        "{} extra alerts around the fleet patterns (at most 5 measured, with two busy loops beside the test): {extra:?}",
        extra.len()
    );
}

/// Fails if the group did not publish an alert one instance published; returns the
/// alerts the group published that one instance did not.
fn nothing_missing<'a>(
    expected: &'a BTreeMap<String, String>,
    published: &'a BTreeMap<String, String>,
) -> Vec<&'a String> {
    let missing = only_in(expected, published);
    assert!(
        missing.is_empty(),
        "{} of {} alerts missing: {missing:?}",
        missing.len(),
        expected.len()
    );
    only_in(published, expected)
}

/// The alerts of `one` that `other` does not hold.
fn only_in<'a>(
    one: &'a BTreeMap<String, String>,
    other: &BTreeMap<String, String>,
) -> Vec<&'a String> {
    one.iter()
        .filter(|(id, _)| !other.contains_key(*id))
        .map(|(_, what)| what)
        .collect()
}

/// Two members consume 70% of `events`, one is killed mid-way through the rest and
/// replaced by a member with an empty state directory, and one undisturbed instance
/// consumes the same input. The stream's last part arrives once the replacement has
/// joined, so that the replacement has work however fast the surviving member took
/// over the killed one's partitions (or the killed one committed before the kill
/// landed). Checks that the group counted every event once; returns the lone
/// instance's alerts and the group's.
fn killed_and_replaced(
    events: &[AgentEventV1],
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let split = events.len() * 7 / 10;
    let held = events.len() - (events.len() - split) / 4;
    stream(&broker.address, &events[..split]);
    let dir = tempfile::tempdir().unwrap();

    // Two members share the partitions of the first 70%.
    let mut first = member(&broker, dir.path(), "pair", "first");
    let mut second = member(&broker, dir.path(), "pair", "second");
    wait_committed(&broker, "pair", split, &[&first, &second]);
    // Most of the rest arrives; one member dies mid-way without a chance to commit,
    // and a replacement with an empty state directory joins before the last quarter.
    let rest = events[split..held].to_vec();
    let brokers = broker.address.clone();
    let producer = std::thread::spawn(move || stream(&brokers, &rest));
    wait_committed(
        &broker,
        "pair",
        split + (events.len() - split) / 5,
        &[&first, &second],
    );
    second.signal(libc::SIGKILL);
    second.wait(Duration::from_secs(10));
    producer.join().unwrap();
    // The replacement joins once the dead member's session has timed out (the test
    // broker then assigns its partitions on the next join).
    kafka_support::outlive_killed_session();
    let mut replacement = member(&broker, dir.path(), "pair", "replacement");
    replacement.wait_ready();
    stream(&broker.address, &events[held..]);
    wait_committed(&broker, "pair", events.len(), &[&first, &replacement]);
    let restored = metric(&replacement.get("/metrics").1, RESTORED).unwrap_or(0.0)
        + metric(&first.get("/metrics").1, RESTORED).unwrap_or(0.0);
    first.stop();
    replacement.stop();
    assert!(
        restored > 0.0,
        "the killed member's partitions were restored from the changelog:\n{}\n-----\n{}",
        first.log(),
        replacement.log()
    );

    // One instance, same input, undisturbed.
    let mut alone = member(&broker, dir.path(), "alone", "alone");
    wait_committed(&broker, "alone", events.len(), &[&alone]);
    alone.stop();

    // Every event counted once: per agent, the newest stored state among the members
    // equals the lone instance's.
    let store = |name: &str| StateStore::open(&dir.path().join(name)).unwrap();
    let (first_store, replacement_store, alone_store) =
        (store("first"), store("replacement"), store("alone"));
    let agents: BTreeSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    for agent in agents {
        let counted = |store: &StateStore| {
            store
                .load_agent(agent)
                .unwrap()
                .map_or(0, |state| state.baseline.events)
        };
        assert_eq!(
            counted(&first_store).max(counted(&replacement_store)),
            counted(&alone_store),
            "{agent}: events counted once across the group (first {}, replacement {}); logs:\n{}\n-----\n{}\n-----\n{}",
            counted(&first_store),
            counted(&replacement_store),
            first.log(),
            second.log(),
            replacement.log()
        );
    }

    let expected = alerts(&broker, "alone-alerts");
    let published = alerts(&broker, "pair-alerts");
    assert!(!expected.is_empty(), "the stream holds attacks");
    (expected, published)
}

#[test]
fn a_partition_whose_changelog_cannot_be_read_stops_the_member_instead_of_skipping_its_history() {
    let broker = Broker::start();
    let group = "unreadable";
    let changelog = format!("{group}-state-changelog");
    broker.create_topics(&[EVENTS], PARTITIONS);
    let kafka = KafkaConfig {
        brokers: broker.address.clone(),
        ..ServiceConfig::default().kafka
    };
    agentwatch::kafka::topics::create_compacted(&kafka, &changelog, PARTITIONS).unwrap();
    // Another member's commit on partition 0: an agent's state in a format this build
    // does not know (a newer build wrote it), and the position that closes the commit.
    let mut state = Vec::new();
    state_value(40, &[0xEE, 1, 2, 3], &mut state);
    let mut position_bytes = Vec::new();
    position_value(40, [], None, &mut position_bytes);
    let position = TestRecord {
        key: Some(POSITION_KEY.to_vec()),
        payload: position_bytes,
        headers: None,
    };
    broker.produce_to(
        &changelog,
        0,
        &[
            TestRecord::keyed("agent-from-a-newer-build", state),
            position,
        ],
    );
    stream(&broker.address, &simulated(20, 2, 5));
    let dir = tempfile::tempdir().unwrap();

    // Consuming partition 0 from the group's offset (the reset policy: its start)
    // would rebuild its agents from nothing while their events up to 40 are gone from
    // the changelog's point of view; the member stops and says why.
    let mut lone = member(&broker, dir.path(), group, "lone");
    let status = lone.wait(Duration::from_secs(60));
    let log = lone.log();
    assert!(!status.success(), "the member kept running:\n{log}");
    assert!(
        log.contains("stopping rather than consuming it from the group offset"),
        "{log}"
    );
    assert_eq!(
        broker.committed(group, EVENTS, PARTITIONS),
        0,
        "nothing was consumed and committed:\n{log}"
    );
}
