//! Following the compacted approvals topic (key = `approval_id`, value = agent-approval
//! v1 JSON, empty value = withdrawn); see [`super::compacted`] and
//! [`crate::approvals::source::decode_topic_record`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::compacted::{self, Follower, RecordTopic, Refusal};
use crate::approvals::source::decode_topic_record;
use crate::approvals::{ApprovalUpdate, RecordError};
use crate::config::KafkaConfig;
use crate::error::Result;
use crate::signing::TrustedKeys;
use crate::telemetry::{Metrics, RecordSource};

impl Refusal for RecordError {
    fn code(&self) -> &'static str {
        RecordError::code(self)
    }
}

/// Reads `topic` up to its current end, then follows it on a thread until `stop`.
/// Refused records are logged by position and code (never by content) and counted in
/// `metrics`.
pub fn follow(
    kafka: &KafkaConfig,
    topic: &str,
    trust: Option<TrustedKeys>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<Follower<ApprovalUpdate>> {
    let what = RecordTopic {
        topic,
        name: "approvals",
        record: "approval",
        source: RecordSource::ApprovalsTopic,
    };
    let decode = move |key: Option<&[u8]>, value: Option<&[u8]>| {
        decode_topic_record(key, value, trust.as_ref())
    };
    compacted::follow_refusing(kafka, what, decode, metrics, stop)
}
