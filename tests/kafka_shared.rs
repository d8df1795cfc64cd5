//! Fleet-wide knowledge shared between instances through compacted topics, against a
//! real Kafka-protocol broker (Tansu on 127.0.0.1): a credential first used by an agent
//! on one instance is known to every other instance, whether it was running at the time
//! or started later with an empty state directory; an outage whose failures land on
//! three instances, one agent each, is one fleet event; and one whose failures lie in a
//! backlog over three partitions is judged in the order it happened, not in the order
//! the partitions were fetched.

mod common;
mod kafka_support;

use std::path::Path;
use std::time::Duration;

use agentwatch::model::time::{HOUR_MS, MINUTE_MS};
use agentwatch::model::{Alert, Outcome};
use kafka_support::{service_config, Broker, ServiceProcess, TestRecord};
use rdkafka::message::Message;

const CREDENTIALS: &str = "shared-credentials";
const SHARED: &str = "cred-shared";

/// An instance in a group of its own, reading its own events topic: it shares nothing
/// with the others but the broker and the shared topics (named in the config: by
/// default each group has its own).
fn instance(broker: &Broker, dir: &Path, name: &str) -> ServiceProcess {
    let topics = format!(
        "[kafka.topics]\nevents = \"{name}-events\"\nalerts = \"{name}-alerts\"\ncommands = \"{name}-commands\"\ndlq = \"{name}-dlq\"\ncredentials = \"{CREDENTIALS}\"\nfleet = \"shared-fleet\"\n"
    );
    let config = service_config(broker, &dir.join(name), name, &topics);
    ServiceProcess::start(dir, name, &config)
}

/// `agent` calls the CRM with the shared credential, `count` times a minute apart from
/// `hour` hours into the test week.
fn uses(agent: &str, hour: i64, count: u32) -> Vec<TestRecord> {
    (0..count)
        .map(|i| {
            let time = common::monday() + 10 * HOUR_MS + hour * HOUR_MS + i64::from(i) * MINUTE_MS;
            let mut event = common::event(u64::from(i), agent, time, "read", "crm", 10);
            event.credential_id = Some(SHARED.into());
            TestRecord::keyed(agent, serde_json::to_vec(&event).unwrap())
        })
        .collect()
}

fn wait_committed(broker: &Broker, name: &str, total: i64, service: &ServiceProcess) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while broker.committed(name, &format!("{name}-events"), 1) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} did not commit {total} events; log:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alerts of `detector` that instance `name` published, as (agent, the evidence
/// context's `context` entry).
fn alerts(broker: &Broker, name: &str, detector: &str, context: &str) -> Vec<(String, String)> {
    broker
        .read_all(&format!("{name}-alerts"), 1, Duration::from_secs(5))
        .iter()
        .map(|m| serde_json::from_slice::<Alert>(m.payload().unwrap_or_default()).unwrap())
        .filter(|a| a.detector.id == detector)
        .map(|a| {
            let value = a.evidence.context.get(context).cloned();
            (a.agent_id, value.unwrap_or_default())
        })
        .collect()
}

/// (agent, whether it is a fleet alert) of each `denied_burst` alert `name` published.
fn failure_alerts(broker: &Broker, name: &str) -> Vec<(String, bool)> {
    alerts(broker, name, "denied_burst", "baseline")
        .into_iter()
        .map(|(agent, baseline)| (agent, baseline == "fleet event"))
        .collect()
}

/// Two quiet days of `agent` reading email every 15 minutes, then, at 10:00 on the
/// third day, `failing` calls denied within three minutes (an outage of email).
fn outage(agent: &str, failing: u32) -> Vec<TestRecord> {
    outage_at(agent, failing, 0)
}

/// [`outage`], with the failures starting `delay_ms` after 10:00.
fn outage_at(agent: &str, failing: u32, delay_ms: i64) -> Vec<TestRecord> {
    let start = common::monday();
    let quiet = (0..2 * 96).map(|i| (start + i * 15 * MINUTE_MS, Outcome::Success));
    let burst = (0..i64::from(failing)).map(|i| {
        (
            start + 58 * HOUR_MS + delay_ms + i * 15_000,
            Outcome::Denied,
        )
    });
    quiet
        .chain(burst)
        .enumerate()
        .map(|(i, (time, outcome))| {
            let mut event = common::event(i as u64, agent, time, "read", "email", 10);
            event.outcome = Some(outcome);
            TestRecord::keyed(agent, serde_json::to_vec(&event).unwrap())
        })
        .collect()
}

/// (agent, first user named by the evidence) of each `credential_misuse` alert `name`
/// published.
fn misuse_alerts(broker: &Broker, name: &str) -> Vec<(String, String)> {
    alerts(broker, name, "credential_misuse", "first_used_by")
}

#[test]
fn a_credential_first_used_on_one_instance_is_known_to_the_others() {
    let broker = Broker::start();
    for name in ["one", "two", "three"] {
        broker.create_topics(&[&format!("{name}-events")], 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut one = instance(&broker, dir.path(), "one");
    let mut two = instance(&broker, dir.path(), "two");
    one.wait_ready();
    two.wait_ready();

    // Agent alpha, on instance one, is the first to use the credential.
    broker.produce("one-events", &uses("alpha", 0, 3));
    wait_committed(&broker, "one", 3, &one);
    let published = broker.read_all(CREDENTIALS, 1, Duration::from_secs(30));
    assert!(
        published
            .iter()
            .any(|m| m.key().is_some_and(|k| k.starts_with(SHARED.as_bytes()))),
        "instance one published no use of {SHARED}; log:\n{}",
        one.log()
    );
    // Instance two reads the topic every 200 ms and applies what it read between
    // batches (at least every flush interval, 200 ms).
    std::thread::sleep(Duration::from_secs(3));

    // Agent beta, on instance two, uses the same credential an hour later.
    broker.produce("two-events", &uses("beta", 1, 1));
    wait_committed(&broker, "two", 1, &two);
    assert_eq!(
        misuse_alerts(&broker, "two"),
        [("beta".to_owned(), "alpha".to_owned())],
        "instance two did not learn alpha's use; log:\n{}",
        two.log()
    );
    assert!(misuse_alerts(&broker, "one").is_empty(), "alpha was first");

    // An instance started later, with an empty state directory, loads the ledger.
    let mut three = instance(&broker, dir.path(), "three");
    three.wait_ready();
    broker.produce("three-events", &uses("gamma", 2, 1));
    wait_committed(&broker, "three", 1, &three);
    assert_eq!(
        misuse_alerts(&broker, "three"),
        [("gamma".to_owned(), "alpha".to_owned())],
        "instance three did not load alpha's use; log:\n{}",
        three.log()
    );
    for service in [&mut one, &mut two, &mut three] {
        service.signal(libc::SIGTERM);
        assert!(service.wait(Duration::from_secs(60)).success());
    }
}

#[test]
fn an_outage_seen_one_agent_per_instance_is_one_fleet_event() {
    let broker = Broker::start();
    let names = ["east", "west", "north"];
    for name in names {
        broker.create_topics(&[&format!("{name}-events")], 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut services: Vec<ServiceProcess> = names
        .iter()
        .map(|name| instance(&broker, dir.path(), name))
        .collect();
    for service in &services {
        service.wait_ready();
    }
    // The outage reaches one agent on each instance, a minute apart; each instance
    // has seen the others' sightings before its own agent fails.
    for (i, name) in names.iter().enumerate() {
        let records = outage(&format!("agent-{name}"), 12);
        broker.produce(&format!("{name}-events"), &records);
        wait_committed(&broker, name, records.len() as i64, &services[i]);
        std::thread::sleep(Duration::from_secs(3));
    }
    let first = failure_alerts(&broker, "east");
    assert_eq!(
        first,
        [("agent-east".to_owned(), false)],
        "the first agent is its own anomaly; log:\n{}",
        services[0].log()
    );
    let last = failure_alerts(&broker, "north");
    assert!(
        !last.is_empty() && last.iter().all(|(_, fleet)| *fleet),
        "the third agent completes a fleet pattern across instances: {last:?}; log:\n{}",
        services[2].log()
    );
    for service in &mut services {
        service.signal(libc::SIGTERM);
        assert!(service.wait(Duration::from_secs(60)).success());
    }
}

#[test]
fn an_outage_in_a_backlog_over_partitions_is_judged_in_the_order_it_happened() {
    let broker = Broker::start();
    let name = "backlog";
    let topic = format!("{name}-events");
    let partitions = 3;
    broker.create_topics(&[&topic], partitions);
    // The outage reaches the agent of partition 2 first and the agent of partition 0
    // last, five minutes apart. The whole backlog is there before the instance starts,
    // and librdkafka fetches it a partition at a time: judged in fetch order, no agent
    // would see another's earlier failures.
    let mut total = 0;
    for partition in 0..partitions {
        let delay = i64::from(partitions - 1 - partition) * 5 * MINUTE_MS;
        let records = outage_at(&format!("agent-p{partition}"), 12, delay);
        broker.produce_to(&topic, partition, &records);
        total += records.len();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut service = instance(&broker, dir.path(), name);
    kafka_support::wait_committed(&broker, name, &topic, partitions, total, &[&service]);
    let mut alerts = failure_alerts(&broker, name);
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("agent-p0".to_owned(), true),
            ("agent-p1".to_owned(), false),
            ("agent-p2".to_owned(), false)
        ],
        "the first two agents are their own anomalies, the third (in event time) completes the fleet pattern; log:\n{}",
        service.log()
    );
    service.signal(libc::SIGTERM);
    assert!(service.wait(Duration::from_secs(60)).success());
}
