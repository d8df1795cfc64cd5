//! Following the compacted approvals topic (key = `approval_id`, value = agent-approval
//! v1 JSON, empty value = withdrawn); see [`super::compacted`] and
//! [`crate::approvals::source::decode_topic_record`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::compacted::{self, Follower, RecordAt};
use crate::approvals::source::decode_topic_record;
use crate::approvals::ApprovalUpdate;
use crate::config::KafkaConfig;
use crate::error::Result;
use crate::signing::TrustedKeys;
use crate::telemetry::{Metrics, RecordSource};

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
    let decode = move |at: RecordAt<'_>, key: Option<&[u8]>, value: Option<&[u8]>| {
        match decode_topic_record(key, value, trust.as_ref()) {
            Ok(update) => Some(update),
            Err(error) => {
                tracing::warn!(
                    topic = at.topic,
                    partition = at.partition,
                    offset = at.offset,
                    code = error.code(),
                    %error,
                    "approval record refused"
                );
                metrics.record_rejected(RecordSource::ApprovalsTopic, error.code());
                None
            }
        }
    };
    compacted::follow(kafka, topic, "approvals", Box::new(decode), stop)
}
