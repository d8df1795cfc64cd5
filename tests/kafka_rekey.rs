//! Re-keying (`[kafka] rekey`) against a real Kafka-protocol broker (Tansu on
//! 127.0.0.1): events produced without keys or keyed by something else, each agent's
//! spread over the partitions, still meet their agent's state on one member of a group.

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentwatch::model::{decode_event, AgentEventV1, Limits};
use agentwatch::state::StateStore;
use kafka_support::{
    headers_of, service_config, simulated, wait_committed, Broker, ServiceProcess, TestRecord,
};
use rdkafka::message::{Message, OwnedMessage};

const EVENTS: &str = "agent-events";
const PARTITIONS: i32 = 3;
const GROUP: &str = "rekeyed";

/// Simulated events produced half without a key and half keyed by something other than
/// the agent (the event id, as a gateway keying by request would), so that every agent
/// is spread over the partitions (checked).
fn produce_spread(broker: &Broker, agents: usize, days: u32, seed: u64) -> Vec<AgentEventV1> {
    let events = simulated(agents, days, seed);
    broker.produce(EVENTS, &records_of(&events));
    assert_spread(broker, &events);
    events
}

/// `events` as records, half without a key and half keyed by their event id.
fn records_of(events: &[AgentEventV1]) -> Vec<TestRecord> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| TestRecord {
            key: (index % 2 == 1).then(|| event.event_id.as_bytes().to_vec()),
            payload: serde_json::to_vec(event).unwrap(),
            ..TestRecord::default()
        })
        .collect()
}

/// Fails unless every agent of the produced `events` is spread over several partitions.
fn assert_spread(broker: &Broker, events: &[AgentEventV1]) {
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
}

/// Waits until the group has processed `count` events from the repartition topic.
fn wait_processed(broker: &Broker, count: usize, members: &[&ServiceProcess]) {
    let repartition = format!("{GROUP}-repartition");
    wait_committed(broker, GROUP, &repartition, PARTITIONS, count, members);
}

/// How many of `events` each agent has.
fn events_per_agent(events: &[AgentEventV1]) -> BTreeMap<&str, u64> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for event in events {
        *counts.entry(event.agent_id.as_str()).or_default() += 1;
    }
    counts
}

/// A member of the group with re-keying on, its state in `dir/name`.
fn member(broker: &Broker, dir: &Path, name: &str) -> ServiceProcess {
    member_with(broker, dir, name, "")
}

/// [`member`] with `extra` configuration sections.
fn member_with(broker: &Broker, dir: &Path, name: &str, extra: &str) -> ServiceProcess {
    let config = service_config(broker, &dir.join(name), GROUP, extra).replacen(
        "[kafka.options]",
        "rekey = true\n[kafka.options]",
        1,
    );
    ServiceProcess::start(dir, name, &config)
}

#[test]
fn unkeyed_events_are_rekeyed_so_that_each_agent_is_counted_once_on_one_member() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events = produce_spread(&broker, 30, 3, 17);

    let dir = tempfile::tempdir().unwrap();
    let mut first = member(&broker, dir.path(), "first");
    let mut second = member(&broker, dir.path(), "second");
    let repartition = format!("{GROUP}-repartition");
    wait_processed(&broker, events.len(), &[&first, &second]);
    wait_committed(
        &broker,
        &format!("{GROUP}-rekey"),
        EVENTS,
        PARTITIONS,
        events.len(),
        &[&first, &second],
    );
    for member in [&mut first, &mut second] {
        member.stop();
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
    let expected = events_per_agent(&events);
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

/// Fails unless every agent of `events` counted each of its events exactly once in
/// the store at `dir`.
fn assert_counted_once(dir: &Path, events: &[AgentEventV1], log: &str) {
    let store = StateStore::open(dir).unwrap();
    for (agent, count) in events_per_agent(events) {
        let counted = store
            .load_agent(agent)
            .unwrap()
            .map_or(0, |state| state.baseline.events);
        assert_eq!(
            counted, count,
            "{agent}: every event counted once; log:\n{log}"
        );
    }
}

/// What a router taken over forwards again (the records it forwarded but had not
/// committed): copies of each repartition partition's records below offset `below`,
/// stamped as they were, produced to the same partitions. Returns how many.
fn forward_again(broker: &Broker, forwarded: &[OwnedMessage], below: i64) -> usize {
    let repartition = format!("{GROUP}-repartition");
    let mut copies = 0;
    for partition in 0..PARTITIONS {
        let records: Vec<TestRecord> = forwarded
            .iter()
            .filter(|m| m.partition() == partition)
            .filter(|m| m.offset() < below)
            .map(|m| TestRecord {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m.headers().map(|h| h.as_borrowed().detach()),
            })
            .collect();
        copies += records.len();
        broker.produce_to(&repartition, partition, &records);
    }
    copies
}

/// A router taken over forwards again what it had forwarded but not committed. Each
/// forwarded record says where it came from, and the engine skips such second copies:
/// while running, after a restart on its own state, and on a replacement with an empty
/// disk that restores from the changelog. Without that, each copy's event would be
/// counted twice (checked: every agent's stored event count), and a copy of a rejected
/// event dead-lettered again.
#[test]
fn records_forwarded_a_second_time_are_processed_once() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events = produce_spread(&broker, 20, 3, 23);
    // And one event the engine rejects (dated beyond the time bounds): its copies must
    // not be dead-lettered again.
    let mut future = serde_json::to_value(&events[0]).unwrap();
    future["agent_id"] = "agent-future".into();
    future["time"] = "2099-01-01T00:00:00Z".into();
    broker.produce(
        EVENTS,
        &[TestRecord {
            payload: serde_json::to_vec(&future).unwrap(),
            ..TestRecord::default()
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut first = member(&broker, dir.path(), "first");
    wait_processed(&broker, events.len() + 1, &[&first]);
    let forwarded = broker.read_all(
        &format!("{GROUP}-repartition"),
        events.len() + 1,
        Duration::from_secs(60),
    );
    assert_eq!(forwarded.len(), events.len() + 1);
    let mut produced = events.len() + 1;

    // While running.
    let copies = forward_again(&broker, &forwarded, 40);
    assert!(copies > 0);
    produced += copies;
    wait_processed(&broker, produced, &[&first]);
    first.stop();
    assert_counted_once(&dir.path().join("first"), &events, &first.log());

    // Restarted on its own state.
    let mut restarted = member(&broker, dir.path(), "first");
    produced += forward_again(&broker, &forwarded, 80);
    wait_processed(&broker, produced, &[&restarted]);
    restarted.stop();
    assert_counted_once(&dir.path().join("first"), &events, &restarted.log());

    // A replacement with an empty disk, restored from the changelog.
    let mut replacement = member(&broker, dir.path(), "replacement");
    produced += forward_again(&broker, &forwarded, i64::MAX);
    wait_processed(&broker, produced, &[&replacement]);
    replacement.stop();
    let log = replacement.log();
    assert!(
        log.contains("partition restored from the changelog"),
        "the replacement restored from the changelog:\n{log}"
    );
    assert_counted_once(&dir.path().join("replacement"), &events, &log);
    let letters = broker.read_all("agent-events-dlq", 1, Duration::from_secs(10));
    assert_eq!(letters.len(), 1, "the rejected event is dead-lettered once");
}

#[test]
fn a_router_killed_mid_stream_forwards_every_event_at_least_once_and_each_is_counted_once() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events = simulated(40, 5, 5);
    let records = records_of(&events);
    let dir = tempfile::tempdir().unwrap();
    let routers = format!("{GROUP}-rekey");

    // The input arrives in twenty parts a quarter of a second apart, from after the
    // router started until it is killed, once it has committed some of it; the parts
    // left arrive after the kill. So the kill always interrupts the routing, however
    // long the router takes to start. (Produced all at once before it started, the
    // router once forwarded all of it within its first commit interval, and the kill
    // interrupted nothing.)
    let parts: Vec<&[TestRecord]> = records.chunks(records.len().div_ceil(20)).collect();
    let killed = AtomicBool::new(false);
    let produced = AtomicUsize::new(0);
    let mut first = member(&broker, dir.path(), "first");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for part in &parts {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                broker.produce(EVENTS, part);
                produced.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while broker.committed(&routers, EVENTS, PARTITIONS) == 0 {
            assert!(Instant::now() < deadline, "no commit:\n{}", first.log());
            std::thread::sleep(Duration::from_millis(2));
        }
        first.signal(libc::SIGKILL);
        first.wait(Duration::from_secs(10));
        killed.store(true, Ordering::SeqCst);
    });
    let committed = broker.committed(&routers, EVENTS, PARTITIONS);
    assert!(
        committed < events.len() as i64,
        "the kill must interrupt the routing ({committed} of {} committed)",
        events.len()
    );
    for part in &parts[produced.load(Ordering::SeqCst)..] {
        broker.produce(EVENTS, part);
    }
    assert_spread(&broker, &events);

    kafka_support::outlive_killed_session();
    let mut restarted = member(&broker, dir.path(), "restarted");
    wait_committed(
        &broker,
        &routers,
        EVENTS,
        PARTITIONS,
        events.len(),
        &[&restarted],
    );
    let forwarded = broker.read_all(
        &format!("{GROUP}-repartition"),
        events.len(),
        Duration::from_secs(60),
    );
    wait_processed(&broker, forwarded.len(), &[&restarted]);
    restarted.stop();
    // What was forwarded twice is counted once.
    assert_counted_once(&dir.path().join("restarted"), &events, &restarted.log());

    let ids: BTreeSet<String> = forwarded
        .iter()
        .map(|message| {
            let event: AgentEventV1 = serde_json::from_slice(message.payload().unwrap()).unwrap();
            event.event_id
        })
        .collect();
    let lost: Vec<&str> = events
        .iter()
        .map(|event| event.event_id.as_str())
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} events never forwarded (first: {:?})",
        lost.len(),
        events.len(),
        lost.first()
    );
    eprintln!(
        "forwarded {} records for {} events ({} again after the kill)",
        forwarded.len(),
        events.len(),
        forwarded.len() - events.len()
    );
}

/// A backlog longer than `[time] max_behind` is forwarded abreast. librdkafka fetches
/// megabytes of one partition before the next, so forwarded as fetched, one source
/// partition's later days reach a repartition partition before another's earlier
/// ones, and the engine refuses what lands more than `max_behind` behind the
/// partition's watermark. The router merges its partitions by event time instead:
/// nothing lands that far behind, and every event is counted.
#[test]
fn a_backlog_longer_than_max_behind_is_forwarded_abreast_and_every_event_counted() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events = produce_spread(&broker, 20, 4, 23);
    let dir = tempfile::tempdir().unwrap();
    let max_behind_ms = 86_400_000;
    let mut only = member_with(&broker, dir.path(), "only", "[time]\nmax_behind = \"1d\"");
    let repartition = format!("{GROUP}-repartition");
    wait_processed(&broker, events.len(), &[&only]);
    only.stop();

    let forwarded = broker.read_all(&repartition, events.len(), Duration::from_secs(60));
    let mut watermark: BTreeMap<i32, i64> = BTreeMap::new();
    let mut far_behind = 0;
    for message in &forwarded {
        let time_ms = decode_event(message.payload().unwrap(), &Limits::default())
            .unwrap()
            .time_ms;
        let seen = watermark.entry(message.partition()).or_insert(time_ms);
        if time_ms < *seen - max_behind_ms {
            far_behind += 1;
        }
        *seen = (*seen).max(time_ms);
    }
    assert_eq!(
        far_behind,
        0,
        "{far_behind} of {} records forwarded more than a day behind their partition",
        forwarded.len()
    );
    let store = StateStore::open(&dir.path().join("only")).unwrap();
    let expected = events_per_agent(&events);
    for (agent, count) in expected {
        let counted = store
            .load_agent(agent)
            .unwrap()
            .map_or(0, |state| state.baseline.events);
        assert_eq!(
            counted,
            count,
            "{agent}: every event counted; log:\n{}",
            only.log()
        );
    }
}

#[test]
fn a_router_that_cannot_forward_stops_the_member_instead_of_starving_it() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    // An event larger than the producers may send (lowered here to 1,000 bytes): the
    // router cannot forward it, and nothing after it would reach the repartition topic.
    let mut event = simulated(1, 1, 3).remove(0);
    event.attributes.insert("note".into(), "x".repeat(2_000));
    broker.produce(
        EVENTS,
        &[TestRecord {
            payload: serde_json::to_vec(&event).unwrap(),
            ..TestRecord::default()
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let extra_option = "[kafka.options]\n\"message.max.bytes\" = \"1000\"";
    let config = service_config(&broker, &dir.path().join("lone"), GROUP, "").replacen(
        "[kafka.options]",
        &format!("rekey = true\n{extra_option}"),
        1,
    );
    let mut lone = ServiceProcess::start(dir.path(), "lone", &config);
    let status = lone.wait(Duration::from_secs(60));
    let log = lone.log();
    assert!(!status.success(), "the member kept running:\n{log}");
    assert!(
        log.contains(&format!("producing to {GROUP}-repartition")),
        "the router's own error is the one reported:\n{log}"
    );
}

/// A record larger than any event may be (`max_event_bytes`) is dead-lettered by the
/// router, naming the events topic it came from, and not forwarded: with the router's
/// headers on top, one near the broker's record limit would be refused by the
/// repartition topic and re-sent at every commit. The events around it are counted.
#[test]
fn a_record_too_large_for_an_event_is_dead_lettered_by_the_router() {
    use agentwatch::kafka::dead_letter;

    let broker = Broker::start();
    broker.create_topics(&[EVENTS], PARTITIONS);
    let events = simulated(2, 1, 9);
    let (before, after) = events.split_at(events.len() / 2);
    let huge = TestRecord {
        payload: vec![b'x'; 200 * 1024],
        ..TestRecord::default()
    };
    let mut records = records_of(before);
    records.push(huge);
    records.extend(records_of(after));
    broker.produce_to(EVENTS, 0, &records);

    let dir = tempfile::tempdir().unwrap();
    let mut lone = member(&broker, dir.path(), "lone");
    wait_committed(
        &broker,
        &format!("{GROUP}-rekey"),
        EVENTS,
        PARTITIONS,
        records.len(),
        &[&lone],
    );
    wait_processed(&broker, events.len(), &[&lone]);
    lone.stop();

    let letters = broker.read_all("agent-events-dlq", 1, Duration::from_secs(30));
    assert_eq!(letters.len(), 1, "one dead letter:\n{}", lone.log());
    let headers = headers_of(&letters[0]);
    assert_eq!(headers[dead_letter::HEADER_ERROR_CODE], "too_large");
    assert_eq!(headers[dead_letter::HEADER_SOURCE_TOPIC], EVENTS);
    assert_eq!(
        headers[dead_letter::HEADER_SOURCE_OFFSET],
        before.len().to_string()
    );
    let forwarded = broker.read_all(
        &format!("{GROUP}-repartition"),
        events.len(),
        Duration::from_secs(30),
    );
    assert_eq!(
        forwarded.len(),
        events.len(),
        "only the events are forwarded"
    );
    assert_counted_once(&dir.path().join("lone"), &events, &lone.log());
}
