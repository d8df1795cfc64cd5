//! The Kafka service against a real Kafka-protocol broker (Tansu on 127.0.0.1): end to
//! end, bad input, crash safety, graceful shutdown and metrics. The service under test
//! is the real `agentwatch run` binary.

mod common;
mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agentwatch::config::{KafkaConfig, ServiceConfig};
use agentwatch::eval::{AlertMark, Evaluation};
use agentwatch::kafka::dead_letter;
use agentwatch::kafka::stream::{stream_events, StreamTarget};
use agentwatch::model::{AgentEventV1, Alert, Command};
use agentwatch::pipeline::Outputs;
use agentwatch::sim::{SimConfig, Simulation};
use agentwatch::state::StateStore;
use agentwatch::state::{AgentState, RecentAlert, RecentAlerts};
use kafka_support::{
    headers_of, metric, metric_sum, service_config, Broker, ServiceProcess, Storage, TestRecord,
};
use rdkafka::message::{Header, Message, OwnedHeaders};

const EVENTS: &str = "agent-events";
const PROCESSED: &str = "agentwatch_events_total{result=\"processed\"}";
const INVALID: &str = "agentwatch_events_total{result=\"invalid\"}";

fn simulation(agents: usize, days: u32, seed: u64) -> (Simulation, Vec<AgentEventV1>) {
    let simulation = Simulation::new(SimConfig {
        agents,
        days,
        seed,
        attacks: true,
        ..SimConfig::default()
    });
    let events = simulation.events().collect();
    (simulation, events)
}

/// Produces events keyed by agent, as `simulate --to-kafka` does.
fn stream(broker: &Broker, events: &[AgentEventV1]) {
    let target = StreamTarget {
        kafka: KafkaConfig {
            brokers: broker.address.clone(),
            ..ServiceConfig::default().kafka
        },
        topic: EVENTS.into(),
        rate: None,
    };
    let sent = stream_events(events.iter().cloned(), &target, &mut |_, _| {}).unwrap();
    assert_eq!(sent, events.len() as u64);
}

/// What `replay` decides for the same events: the reference for the service.
fn reference(
    events: &[AgentEventV1],
) -> (tempfile::TempDir, agentwatch::pipeline::Engine, Outputs) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path());
    let outputs = common::run(&mut engine, events);
    (dir, engine, outputs)
}

fn alerts_in(broker: &Broker, at_least: usize) -> Vec<Alert> {
    broker
        .read_all("agent-alerts", at_least, Duration::from_secs(60))
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
        .collect()
}

fn ids<'a>(ids: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    ids.cloned().collect()
}

fn wait_committed(
    broker: &Broker,
    group: &str,
    partitions: i32,
    total: usize,
    service: &ServiceProcess,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let committed = broker.committed(group, EVENTS, partitions);
        if committed == total as i64 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group {group} committed {committed} of {total}; log:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn end_to_end_alerts_match_replay_and_catch_the_incidents() {
    let broker = Broker::start();
    // One partition: the engine's cross-agent context (fleet events, peers, the
    // credential ledger) makes decisions depend on how agents' events interleave, and a
    // single partition keeps the file's order, so the comparison with replay is exact.
    broker.create_topics(&[EVENTS], 1);
    let (simulation, events) = simulation(30, 7, 11);
    // The real command users run to stream traffic in.
    let streamed = std::process::Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(["simulate", "--agents", "30", "--days", "7", "--seed", "11"])
        .args(["--to-kafka", &broker.address, "--topic", EVENTS])
        .output()
        .unwrap();
    assert!(streamed.status.success(), "{streamed:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&broker, &dir.path().join("state"), "e2e", "");
    let service = ServiceProcess::start(dir.path(), "run", &config);
    service.wait_for_metric(PROCESSED, events.len() as f64, Duration::from_secs(180));

    let (_ref_dir, _engine, expected) = reference(&events);
    assert!(!expected.alerts.is_empty() && !expected.commands.is_empty());
    let alert_records = broker.read_all(
        "agent-alerts",
        expected.alerts.len(),
        Duration::from_secs(60),
    );
    let command_records = broker.read_all(
        "agent-commands",
        expected.commands.len(),
        Duration::from_secs(60),
    );
    let alert_schema = common::validator("alert.v1.schema.json");
    let command_schema = common::validator("command.v1.schema.json");
    let mut alerts = Vec::new();
    for record in &alert_records {
        let value: serde_json::Value = serde_json::from_slice(record.payload().unwrap()).unwrap();
        common::assert_valid(&alert_schema, &value, "alert from Kafka");
        let alert: Alert = serde_json::from_value(value).unwrap();
        assert_eq!(
            record.key(),
            Some(alert.agent_id.as_bytes()),
            "alerts are keyed by agent"
        );
        alerts.push(alert);
    }
    let mut commands = Vec::new();
    for record in &command_records {
        let value: serde_json::Value = serde_json::from_slice(record.payload().unwrap()).unwrap();
        common::assert_valid(&command_schema, &value, "command from Kafka");
        let command: Command = serde_json::from_value(value).unwrap();
        assert_eq!(record.key(), Some(command.agent_id.as_bytes()));
        commands.push(command);
    }
    // Same decisions as replay, each published exactly once on a clean run.
    assert_eq!(alerts.len(), expected.alerts.len());
    assert_eq!(
        ids(alerts.iter().map(|a| &a.alert_id)),
        ids(expected.alerts.iter().map(|a| &a.alert_id))
    );
    assert_eq!(
        ids(commands.iter().map(|c| &c.command_id)),
        ids(expected.commands.iter().map(|c| &c.command_id))
    );
    let marks: Vec<AlertMark> = alerts
        .iter()
        .map(|a| AlertMark {
            agent_id: a.agent_id.clone(),
            time_ms: a.time.millis(),
            detector: a.detector.id.clone(),
        })
        .collect();
    let evaluation = Evaluation::new(&simulation.labels(), &marks, events.len() as u64).unwrap();
    // `tail` prints every alert readably, one line each (plus a cooldown note at most).
    let tailed = std::process::Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args([
            "tail",
            "--brokers",
            &broker.address,
            "--topic",
            "agent-alerts",
        ])
        .args(["--from-beginning", "--max", &alerts.len().to_string()])
        .args(["--idle-exit", "30"])
        .output()
        .unwrap();
    assert!(tailed.status.success(), "{tailed:?}");
    let printed = String::from_utf8(tailed.stdout).unwrap();
    for alert in &alerts {
        let line = format!("{}  ", alert.agent_id);
        assert!(
            printed
                .lines()
                .any(|l| l.starts_with(&line) && l.contains(&alert.summary)),
            "tail did not print {}:\n{printed}",
            alert.summary
        );
    }
    // The Kafka path decides exactly as replay (the ids above); detection quality itself
    // is held to its bars by tests/quality.rs and tests/scenarios.rs. On this small
    // fleet one first access (a two-day-old research agent) is within the new_system
    // budget and is not alerted, in replay as through Kafka.
    assert!(
        evaluation.overall_recall() >= 0.9,
        "the injected incidents are detected through Kafka:\n{}",
        evaluation.render()
    );
}

/// Event `i` of `agent`, a 100-byte read of `crm` at `at`, as a record keyed by agent.
fn crm_read(agent: &str, i: u64, at: i64) -> TestRecord {
    let event = common::event(i, agent, at, "read", "crm", 100);
    TestRecord::keyed(agent, serde_json::to_vec(&event).unwrap())
}

fn dlq_header(name: &str, value: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: name,
        value: Some(value),
    })
}

#[test]
fn bad_records_go_to_the_dead_letter_topic_and_valid_ones_around_them_are_processed() {
    // Memory storage: Tansu's SQLite engine cannot serve the 10 MB record, and this test
    // never resumes inside a record batch (the memory engine's flaw).
    let broker = Broker::start_with(Storage::Memory);
    broker.create_topics(&[EVENTS], 1);
    let monday = common::monday();
    let valid = |i: u64| crm_read("agent-dlq", i, monday + i as i64 * 60_000);
    let huge = vec![b'x'; 10 * 1024 * 1024];
    let bad: Vec<(&str, TestRecord)> = vec![
        (
            "not_utf8",
            TestRecord {
                key: Some(b"agent-dlq".to_vec()),
                payload: vec![0xff, 0xfe, 0x00, 0x81],
                headers: Some(dlq_header("trace-id", "t-123")),
            },
        ),
        ("not_json", TestRecord::keyed("agent-dlq", b"{\"agent_id\": ".to_vec())),
        (
            "missing_field",
            TestRecord::keyed("agent-dlq", br#"{"event_id":"e","time":"2026-01-05T10:00:00Z","action":"read","system":"crm"}"#.to_vec()),
        ),
        (
            "wrong_type",
            TestRecord::keyed("agent-dlq", br#"{"event_id":"e","time":"2026-01-05T10:00:00Z","agent_id":7,"action":"read","system":"crm"}"#.to_vec()),
        ),
        ("too_large", TestRecord::keyed("agent-dlq", huge.clone())),
        // A valid event under another agent's key: in a group it could meet the wrong
        // member's state.
        ("key_mismatch", {
            let mut record = valid(99);
            record.key = Some(b"agent-other".to_vec());
            record
        }),
    ];
    let mut records: Vec<TestRecord> = (0..10).map(valid).collect();
    records.extend(bad.iter().map(|(_, r)| r.clone()));
    records.extend((10..20).map(valid));
    broker.produce(EVENTS, &records);

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = service_config(&broker, &state, "dlq", "");
    let mut service = ServiceProcess::start(dir.path(), "run", &config);
    service.wait_for_metric(PROCESSED, 20.0, Duration::from_secs(60));
    service.wait_for_metric(INVALID, bad.len() as f64, Duration::from_secs(60));

    let letters = broker.read_all("agent-events-dlq", bad.len(), Duration::from_secs(60));
    assert_eq!(letters.len(), bad.len(), "one dead letter per bad record");
    for (index, (code, original)) in bad.iter().enumerate() {
        let letter = letters
            .iter()
            .find(|m| {
                headers_of(m)
                    .get(dead_letter::HEADER_ERROR_CODE)
                    .map(String::as_str)
                    == Some(*code)
            })
            .unwrap_or_else(|| panic!("no dead letter with code {code}"));
        let headers = headers_of(letter);
        assert_eq!(headers[dead_letter::HEADER_SOURCE_TOPIC], EVENTS);
        assert_eq!(headers[dead_letter::HEADER_SOURCE_PARTITION], "0");
        assert_eq!(
            headers[dead_letter::HEADER_SOURCE_OFFSET],
            (10 + index).to_string()
        );
        assert!(!headers[dead_letter::HEADER_ERROR_DETAIL].is_empty());
        assert_eq!(letter.key(), original.key.as_deref());
        match headers.get(dead_letter::HEADER_TRUNCATED) {
            None => assert_eq!(
                letter.payload().unwrap_or_default(),
                original.payload.as_slice(),
                "{code}: original bytes kept"
            ),
            Some(length) => {
                assert_eq!(
                    *code, "too_large",
                    "only an oversized record may lose its payload"
                );
                assert_eq!(length, &huge.len().to_string());
            }
        }
    }
    let first = letters
        .iter()
        .find(|m| {
            headers_of(m)
                .get(dead_letter::HEADER_ERROR_CODE)
                .map(String::as_str)
                == Some("not_utf8")
        })
        .unwrap();
    assert_eq!(
        headers_of(first)["trace-id"],
        "t-123",
        "original headers are kept"
    );

    let metrics = service.get("/metrics").1;
    for (code, _) in &bad {
        let series = format!("agentwatch_dlq_records_total{{code=\"{code}\"}}");
        assert_eq!(metric(&metrics, &series), Some(1.0), "{series}");
    }
    // Nothing lost: after a graceful stop the state store holds the offset after the last
    // record, and the agent's baseline counted exactly the 20 valid events.
    service.signal(libc::SIGTERM);
    assert!(
        service.wait(Duration::from_secs(30)).success(),
        "{}",
        service.log()
    );
    let store = StateStore::open(&state).unwrap();
    assert_eq!(
        store.offset("kafka/agent-events/0").unwrap(),
        Some(records.len() as u64)
    );
    let agent = store
        .load_agent("agent-dlq")
        .unwrap()
        .expect("agent state stored");
    assert_eq!(agent.baseline.events, 20);
}

/// How far a recent alert's score may differ from the replay's. A `new_system` score
/// depends on state that a restart does not rebuild exactly:
/// - where a first use lands (inside or outside the team) depends on which peers' first
///   uses the engine knew when it processed it: the restarted instance knows, through
///   the fleet topic, peers' first uses that the killed one published after its last
///   commit, and partitions interleave differently the second time (before peer uses
///   were shared, systems evicted from bounded tables also differed: `PeerCounts` 179
///   inside / 148 outside against the replay's 186 / 141 in one CI run);
/// - fleet knowledge published to the shared topics before the commit that learned it.
///
/// Scores were seen to differ in the third decimal (0.55 and 0.56).
const SCORE_TOLERANCE: f32 = 0.02;

/// Splits a state into its recent alerts' scores and the rest as a restart can reproduce
/// it (those scores zeroed), so that everything else (times, detectors and severities of
/// the alerts included) is compared exactly and the scores within [`SCORE_TOLERANCE`]. The agent's first uses
/// are compared by their total.
///
/// For the same reasons each detector's calibration is compared by its count of tests
/// only: the counts of excursions below its p-value levels (and the one open) are
/// thresholds on those p-values, and one `new_system` excursion was seen counted in one
/// run and not the other. The count of tests (every event no detector flagged) is
/// exact, as the alerts are.
fn comparable_across_a_restart(mut state: AgentState) -> (AgentState, Vec<f32>) {
    for slot in &mut state.slots {
        slot.calibration.below = [0.0; 2];
        slot.calibration.open = 0;
    }
    // First uses are counted exactly once; only where they landed (inside or outside
    // the team) depends on the peer index.
    state.peers.inside += std::mem::take(&mut state.peers.outside);
    let mut recent = RecentAlerts::default();
    let mut scores = Vec::new();
    for alert in state.recent.iter() {
        scores.push(alert.score);
        recent.remember(RecentAlert {
            score: 0.0,
            ..*alert
        });
    }
    state.recent = recent;
    (state, scores)
}

#[test]
fn sigkill_mid_stream_then_restart_counts_every_event_exactly_once() {
    let broker = Broker::start();
    // One partition, for the reason given in the end-to-end test: the state is compared
    // with a replay of the file, in the file's order.
    broker.create_topics(&[EVENTS], 1);
    let (_simulation, events) = simulation(40, 14, 5);
    stream(&broker, &events);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = service_config(&broker, &state, "crash", "");

    let mut first = ServiceProcess::start(dir.path(), "first", &config);
    // Kill it once some state is committed (the group sees offsets only after the state
    // store has them) but not all of it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while broker.committed("crash", EVENTS, 1) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no commit:\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    first.signal(libc::SIGKILL);
    first.wait(Duration::from_secs(10));
    let store = StateStore::open(&state).unwrap();
    let stored: u64 = (0..2)
        .filter_map(|p| store.offset(&format!("kafka/{EVENTS}/{p}")).unwrap())
        .sum();
    drop(store);
    assert!(
        stored > 0 && stored < events.len() as u64,
        "the crash must interrupt the stream after a commit (stored offsets sum to {stored} of {})",
        events.len()
    );

    kafka_support::outlive_killed_session();
    let mut second = ServiceProcess::start(dir.path(), "second", &config);
    wait_committed(&broker, "crash", 2, events.len(), &second);
    second.signal(libc::SIGTERM);
    assert!(
        second.wait(Duration::from_secs(30)).success(),
        "{}",
        second.log()
    );

    let (_ref_dir, engine, expected) = reference(&events);
    let store = StateStore::open(&state).unwrap();
    let agents: BTreeSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    for agent in agents {
        let stored = store.load_agent(agent).unwrap().expect("agent stored");
        let replayed = engine.agent(agent).unwrap().expect("agent replayed");
        assert_eq!(
            stored.baseline.events,
            replayed.baseline.events,
            "{agent}: events counted once; logs:\n{}\n{}",
            first.log(),
            second.log()
        );
        let (stored, stored_scores) = comparable_across_a_restart(stored);
        let (replayed, replayed_scores) = comparable_across_a_restart(replayed);
        assert_eq!(
            stored, replayed,
            "{agent}: whole state equals a replay of the same events"
        );
        for (got, wanted) in stored_scores.iter().zip(&replayed_scores) {
            assert!(
                (got - wanted).abs() <= SCORE_TOLERANCE,
                "{agent}: a recent alert scored {got}, the replay {wanted}"
            );
        }
    }
    let alerts = alerts_in(&broker, expected.alerts.len());
    let published = ids(alerts.iter().map(|a| &a.alert_id));
    let wanted = ids(expected.alerts.iter().map(|a| &a.alert_id));
    assert!(alerts.len() >= expected.alerts.len());
    assert_eq!(
        published, wanted,
        "every alert at least once, with the replay's ids, and no others"
    );
}

#[test]
fn sigterm_commits_everything_and_a_restart_reprocesses_nothing() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], 2);
    let (_simulation, events) = simulation(12, 7, 8);
    stream(&broker, &events);
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&broker, &dir.path().join("state"), "graceful", "");

    let mut first = ServiceProcess::start(dir.path(), "first", &config);
    first.wait_for_metric(PROCESSED, events.len() as f64, Duration::from_secs(120));
    first.signal(libc::SIGTERM);
    let started = std::time::Instant::now();
    let status = first.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM exits 0: {status:?}\n{}",
        first.log()
    );
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(
        broker.committed("graceful", EVENTS, 2),
        events.len() as i64,
        "offsets committed to the group; log:\n{}",
        first.log()
    );
    assert!(
        first
            .log()
            .contains(&format!("consumed {} records", events.len())),
        "{}",
        first.log()
    );

    // The state store, not the group, says where to resume: with the group rewound to
    // the start, a restart must still consume nothing.
    broker.rewind_group("graceful", EVENTS, 2, 0);
    assert_eq!(broker.committed("graceful", EVENTS, 2), 0);
    let mut second = ServiceProcess::start(dir.path(), "second", &config);
    second.wait_ready();
    // Nor may the group stay behind the store while the member runs: with nothing left
    // to consume no later commit would close the gap (a member killed between its state
    // write and its group commit leaves one), and the group would show the whole stream
    // as pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while broker.committed("graceful", EVENTS, 2) < events.len() as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the group's offsets stayed at {} of {}, behind the store the member resumed from:\n{}",
            broker.committed("graceful", EVENTS, 2),
            events.len(),
            second.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    second.signal(libc::SIGTERM);
    assert!(
        second.wait(Duration::from_secs(30)).success(),
        "{}",
        second.log()
    );
    assert!(
        second.log().contains("consumed 0 records"),
        "nothing reprocessed:\n{}",
        second.log()
    );

    // Two partitions interleave agents differently from the file, and cross-agent
    // context (fleet events, peers) may then decide one finding differently from a
    // replay; what this test owes is that nothing was published twice.
    let (_ref_dir, _engine, expected) = reference(&events);
    let alerts = alerts_in(&broker, expected.alerts.len());
    assert!(alerts.len() >= expected.alerts.len().saturating_sub(1));
    assert_eq!(
        ids(alerts.iter().map(|a| &a.alert_id)).len(),
        alerts.len(),
        "no alert published twice"
    );
}

/// The group's offsets never pass states the changelog has not acknowledged. Here the
/// producer holds each record back for seconds (`linger.ms`), and the member is killed
/// as soon as the group holds every offset. A member used to hand a write's offsets to
/// the group once the write had landed in RocksDB, before its changelog records were
/// acknowledged, whenever no earlier write was in flight (its first commit, or one
/// after an idle spell). Killed then, it left the changelog without those states, and a
/// replacement with an empty disk, finding no position there, started at the group's
/// offset: the events before it were in no state anywhere.
#[test]
fn a_member_killed_once_the_group_has_its_offsets_leaves_every_state_in_the_changelog() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], 1);
    let (_simulation, events) = simulation(6, 2, 11);
    stream(&broker, &events);
    let dir = tempfile::tempdir().unwrap();
    let lingering = |state: &str| {
        service_config(&broker, &dir.path().join(state), "lingering", "").replacen(
            "[kafka.options]\n",
            "[kafka.options]\n\"linger.ms\" = \"4000\"\n",
            1,
        )
    };

    let mut first = ServiceProcess::start(dir.path(), "first", &lingering("first"));
    wait_committed(&broker, "lingering", 1, events.len(), &first);
    first.signal(libc::SIGKILL);
    first.wait(Duration::from_secs(10));

    kafka_support::outlive_killed_session();
    let mut second = ServiceProcess::start(dir.path(), "second", &lingering("second"));
    second.wait_for_metric(
        "agentwatch_changelog_restore_seconds_count",
        1.0,
        Duration::from_secs(60),
    );
    second.stop();

    let (_ref_dir, engine, _expected) = reference(&events);
    let store = StateStore::open(&dir.path().join("second")).unwrap();
    let agents: BTreeSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    for agent in agents {
        let restored = store.load_agent(agent).unwrap().map(|s| s.baseline.events);
        let replayed = engine.agent(agent).unwrap().map(|s| s.baseline.events);
        assert_eq!(
            restored,
            replayed,
            "{agent}: the replacement holds every event the group's offsets passed; logs:\n{}\n{}",
            first.log(),
            second.log()
        );
    }
}

#[test]
fn a_restart_judges_event_times_against_the_watermark_it_committed() {
    let log = late_event_after_a_restart(Disk::Same);
    assert!(
        !log.contains("partition restored from the changelog"),
        "{log}"
    );
}

/// A replacement with an empty disk takes the watermark up from the changelog's
/// position record, as a restart does from its own store.
#[test]
fn a_replacement_with_an_empty_disk_judges_event_times_against_the_changelog_watermark() {
    let log = late_event_after_a_restart(Disk::Empty);
    assert!(
        log.contains("partition restored from the changelog"),
        "{log}"
    );
}

/// Where the instance after the restart keeps its state.
#[derive(Clone, Copy, PartialEq)]
enum Disk {
    /// The first instance's state directory.
    Same,
    /// A new, empty one: the partition is restored from the changelog.
    Empty,
}

/// Ten events of one agent, a SIGTERM, then a restart on `disk` that is handed an event
/// eight days behind the committed watermark (the bound is seven) and one in order.
/// Judged against no watermark, the late one would set it and pass; it must be one
/// `time_out_of_range` dead letter. Returns the second instance's log.
fn late_event_after_a_restart(disk: Disk) -> String {
    const DAY_MS: i64 = 86_400_000;
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], 1);
    let monday = common::monday();
    let record = |i: u64, at: i64| crm_read("agent-wm", i, at);
    let first_records: Vec<TestRecord> = (0..10)
        .map(|i| record(i, monday + i as i64 * 60_000))
        .collect();
    broker.produce(EVENTS, &first_records);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = service_config(&broker, &state, "watermark", "");
    let mut first = ServiceProcess::start(dir.path(), "first", &config);
    first.wait_for_metric(PROCESSED, 10.0, Duration::from_secs(60));
    first.stop();
    let watermark = monday + 9 * 60_000;
    {
        let store = StateStore::open(&state).unwrap();
        assert_eq!(
            store.offset("kafka/agent-events/0#watermark").unwrap(),
            Some(watermark as u64),
            "the watermark is committed with the position"
        );
    }

    broker.produce(
        EVENTS,
        &[
            record(10, watermark - 8 * DAY_MS),
            record(11, watermark + 60_000),
        ],
    );
    let config = match disk {
        Disk::Same => config,
        Disk::Empty => service_config(&broker, &dir.path().join("empty"), "watermark", ""),
    };
    let mut second = ServiceProcess::start(dir.path(), "second", &config);
    second.wait_for_metric(PROCESSED, 1.0, Duration::from_secs(60));
    let metrics = second.get("/metrics").1;
    assert_eq!(metric(&metrics, INVALID), Some(1.0), "{}", second.log());
    let letters = broker.read_all("agent-events-dlq", 1, Duration::from_secs(30));
    assert_eq!(letters.len(), 1);
    assert_eq!(
        headers_of(&letters[0])[dead_letter::HEADER_ERROR_CODE],
        "time_out_of_range"
    );
    second.stop();
    second.log()
}

/// Guards the harness itself: resuming inside a producer batch must return exactly the
/// requested record (Tansu's memory engine returns the next batch instead, which would
/// make the crash test pass or fail by luck).
#[test]
fn the_test_broker_resumes_inside_a_record_batch() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let broker = Broker::start();
    broker.create_topics(&["batches"], 1);
    let records: Vec<TestRecord> = (0..5000)
        .map(|i| TestRecord::keyed("a", format!("{i}").into_bytes()))
        .collect();
    broker.produce("batches", &records);
    for start in [1, 2048, 4999] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker.address)
            .set("group.id", "seek")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("batches", 0, Offset::Offset(start))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let first = (0..100)
            .find_map(|_| consumer.poll(Duration::from_millis(100)))
            .expect("a record")
            .unwrap();
        assert_eq!(first.offset(), start);
        assert_eq!(first.payload(), Some(start.to_string().as_bytes()));
    }
}

#[test]
fn metrics_scraped_over_http_match_what_was_produced() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], 2);
    let (_simulation, events) = simulation(10, 5, 21);
    stream(&broker, &events);
    let garbage: Vec<TestRecord> = (0..3)
        .map(|_| TestRecord::keyed("x", b"nope".to_vec()))
        .collect();
    broker.produce(EVENTS, &garbage);
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&broker, &dir.path().join("state"), "metrics", "");
    let service = ServiceProcess::start(dir.path(), "run", &config);
    assert_eq!(service.get("/healthz").0, 200);
    service.wait_for_metric(PROCESSED, events.len() as f64, Duration::from_secs(120));
    service.wait_for_metric(INVALID, 3.0, Duration::from_secs(30));
    let (_ref_dir, _engine, expected) = reference(&events);
    let alerts = alerts_in(&broker, expected.alerts.len());
    let commands = broker.read_all(
        "agent-commands",
        expected.commands.len(),
        Duration::from_secs(30),
    );
    // Deliveries are counted when acknowledged; give the last ones a moment.
    service.wait_for_metric(
        "agentwatch_records_produced_total{output=\"commands\"}",
        commands.len() as f64,
        Duration::from_secs(30),
    );
    let text = service.get("/metrics").1;
    assert_eq!(metric(&text, PROCESSED), Some(events.len() as f64));
    assert_eq!(metric(&text, INVALID), Some(3.0));
    assert_eq!(
        metric(&text, "agentwatch_dlq_records_total{code=\"not_json\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric_sum(&text, "agentwatch_alerts_total"),
        alerts.len() as f64
    );
    assert_eq!(
        metric_sum(&text, "agentwatch_commands_total"),
        commands.len() as f64
    );
    assert_eq!(
        metric(
            &text,
            "agentwatch_records_produced_total{output=\"alerts\"}"
        ),
        Some(alerts.len() as f64)
    );
    assert_eq!(
        metric(&text, "agentwatch_records_produced_total{output=\"dlq\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "agentwatch_decision_latency_seconds_count"),
        Some((events.len() + 3) as f64)
    );
    let agents: BTreeSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    assert_eq!(
        metric(&text, "agentwatch_agents_tracked"),
        Some(agents.len() as f64)
    );
    let by_severity: BTreeMap<String, usize> = alerts.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.severity.as_str().to_string()).or_default() += 1;
        m
    });
    for (severity, count) in by_severity {
        let series = format!("agentwatch_alerts_total{{severity=\"{severity}\"}}");
        assert_eq!(metric(&text, &series), Some(count as f64), "{series}");
    }
    assert!(!text.contains("agent_id"), "no agent_id labels");
    // Lag is reported per owned partition once librdkafka's statistics arrive.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = service.get("/metrics").1;
        let partitions = ["0", "1"]
            .iter()
            .filter(|p| {
                metric(
                    &text,
                    &format!("agentwatch_consumer_lag{{partition=\"{p}\",topic=\"{EVENTS}\"}}"),
                )
                .is_some()
            })
            .count();
        if partitions == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no consumer lag series:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(service.get("/readyz").0, 200);
}

#[test]
fn missing_topics_are_a_clear_startup_error() {
    let broker = Broker::start();
    broker.create_topics(&[EVENTS], 1);
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&broker, &dir.path().join("state"), "missing", "")
        .replace("create_topics = true", "create_topics = false");
    let mut service = ServiceProcess::start(dir.path(), "run", &config);
    let status = service.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let log = service.log();
    assert!(log.contains("[missing_topics]"), "{log}");
    assert!(
        log.contains("agent-alerts, agent-commands, agent-events-dlq"),
        "{log}"
    );
    assert!(
        !log.contains("missing Kafka topic(s): agent-events,"),
        "{log}"
    );
}
