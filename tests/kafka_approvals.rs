//! Approvals in `agentwatch run` against a real Kafka-protocol broker: approvals come
//! from the compacted approvals topic, only records signed by a trusted key take effect
//! (an unsigned one is refused and counted, on the approvals and the registry topic
//! alike), an approval that arrives after its event is honoured within the grace, and
//! a reused approval is caught.

mod common;
mod kafka_support;

use std::collections::BTreeSet;
use std::time::Duration;

use agentwatch::model::time::{format_rfc3339, MINUTE_MS};
use agentwatch::model::Alert;
use agentwatch::signing::{sign_record, write_key_pair, RecordKind, Signer};
use kafka_support::{service_config, Broker, ServiceProcess, TestRecord};
use rdkafka::message::Message;

const EVENTS: &str = "agent-events";
const APPROVALS: &str = "agent-approvals";
const REGISTRY: &str = "agent-registry";

fn t(minutes: i64) -> i64 {
    common::monday() + 10 * 60 * MINUTE_MS + minutes * MINUTE_MS
}

fn delete(id: u64, agent: &str, minutes: i64, approval: &str) -> TestRecord {
    let mut e = common::event(id, agent, t(minutes), "delete", "billing", 0);
    e.approval_id = Some(approval.to_owned());
    TestRecord::keyed(agent, serde_json::to_vec(&e).unwrap())
}

fn approval(id: &str, signer: Option<&Signer>) -> TestRecord {
    let mut value = serde_json::json!({"approval_id": id, "agent_id": "billing-bot",
        "actions": ["delete"], "systems": ["billing"], "approved_by": "ana@example.com",
        "issued_at": format_rfc3339(t(-60)), "expires_at": format_rfc3339(t(600))});
    if let Some(signer) = signer {
        sign_record(signer, RecordKind::Approval, &mut value).unwrap();
    }
    TestRecord::keyed(id, value.to_string().into_bytes())
}

fn signer_of(path: &std::path::Path) -> Signer {
    Signer::resolve(Some(path)).unwrap().unwrap()
}

#[test]
fn signed_approvals_from_the_topic_are_verified_and_unsigned_ones_refused() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topics(&[APPROVALS, REGISTRY], 1);
    let approver = write_key_pair(&dir.path().join("approver")).unwrap();
    let signer = signer_of(&approver.secret);
    broker.produce(
        APPROVALS,
        &[
            approval("apr-ok", Some(&signer)),
            approval("apr-unsigned", None),
        ],
    );
    // An unsigned registry record would widen billing-bot's boundary: refused.
    let rogue = serde_json::json!({"agent_id": "billing-bot", "owner": "mallory@example.com"});
    broker.produce(
        REGISTRY,
        &[TestRecord::keyed(
            "billing-bot",
            rogue.to_string().into_bytes(),
        )],
    );
    let extra = format!(
        "[approvals]\ntopic = \"{APPROVALS}\"\ngrace = \"2m\"\ntrusted_keys = [\"{pubkey}\"]\n[registry]\ntopic = \"{REGISTRY}\"\ntrusted_keys = [\"{pubkey}\"]\n",
        pubkey = approver.public.display()
    );
    let config = service_config(&broker, &dir.path().join("state"), "approvals-test", &extra);
    let mut service = ServiceProcess::start(dir.path(), "service", &config);
    service.wait_for_metric("agentwatch_approvals", 1.0, Duration::from_secs(60));
    let refused = |source: &str| {
        format!("agentwatch_records_rejected_total{{code=\"unsigned\",source=\"{source}\"}}")
    };
    service.wait_for_metric(&refused("approvals_topic"), 1.0, Duration::from_secs(30));
    service.wait_for_metric(&refused("registry_topic"), 1.0, Duration::from_secs(30));
    assert_eq!(
        kafka_support::metric(&service.get("/metrics").1, "agentwatch_registry_agents"),
        Some(0.0),
        "the unsigned registry record never took effect"
    );

    broker.produce(
        EVENTS,
        &[
            delete(1, "billing-bot", 0, "apr-ok"),
            delete(2, "billing-bot", 15, "apr-unsigned"),
            delete(3, "billing-bot", 30, "apr-ok"),
            // Waits for an approval that is not on the topic yet.
            delete(4, "billing-bot", 60, "apr-late"),
        ],
    );
    service.wait_for_metric(
        "agentwatch_agents_waiting_for_approval",
        1.0,
        Duration::from_secs(30),
    );
    broker.produce(APPROVALS, &[approval("apr-late", Some(&signer))]);
    service.wait_for_metric(
        "agentwatch_approval_changes_total{source=\"topic\"}",
        1.0,
        Duration::from_secs(30),
    );
    broker.produce(EVENTS, &[delete(5, "billing-bot", 75, "apr-late")]);

    let fired: BTreeSet<(String, String)> = broker
        .read_all("agent-alerts", 3, Duration::from_secs(30))
        .iter()
        .map(|m| serde_json::from_slice::<Alert>(m.payload().unwrap()).unwrap())
        .filter(|a| a.detector.id == "high_risk_action")
        .map(|a| (a.event_ids[0].clone(), a.evidence.context["rule"].clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("billing-bot-2", "approval_unknown"),
        ("billing-bot-3", "approval_exhausted"),
        ("billing-bot-5", "approval_exhausted"),
    ]
    .into_iter()
    .map(|(e, r)| (e.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(fired, expected, "{}", service.log());
    let log = service.log();
    assert!(log.contains("approval record refused"), "{log}");
    assert!(!log.contains("mallory"), "record content logged: {log}");
    service.signal(libc::SIGTERM);
    assert!(service.wait(Duration::from_secs(30)).success());
}
