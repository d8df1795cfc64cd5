//! The shared credential ledger on Kafka: a compacted topic of first uses of
//! credentials, one record per (credential, agent), which every instance writes what it
//! learns to and follows from the beginning (see [`crate::pipeline::CredentialLedger`]).
//!
//! Keyed by credential *and* agent rather than by credential alone: compaction keeps
//! the latest record of a key, and the latest use of a credential is not its first. With
//! one key per pair the topic keeps every agent's first use, and each instance takes the
//! earliest, so all instances agree whatever order the records arrive in. Records are
//! facts learned from events, never commands: a forged one can at worst raise a
//! `credential_misuse` alert, which is why the topic needs no signature.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::compacted::{self, Follower, RecordTopic, Refusal};
use crate::approvals::source::describe_json_error;
use crate::config::KafkaConfig;
use crate::error::Result;
use crate::pipeline::CredentialUse;
use crate::telemetry::{Metrics, RecordSource};

/// Separates the credential from the agent in a record's key (a control character no
/// id can usefully contain).
const KEY_SEPARATOR: char = '\u{1f}';

/// Why a shared credential record was refused; its content is not repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialRecordError {
    /// No value (a tombstone), or not a credential-use JSON object.
    #[error("not a credential use ({0})")]
    Malformed(String),
    /// The key is not the record's credential and agent.
    #[error("the record's key differs from its credential_id and agent_id")]
    KeyMismatch,
}

impl CredentialRecordError {
    /// Stable code, the `code` label of `agentwatch_records_rejected_total`.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialRecordError::Malformed(_) => "malformed",
            CredentialRecordError::KeyMismatch => "key_mismatch",
        }
    }
}

impl Refusal for CredentialRecordError {
    fn code(&self) -> &'static str {
        CredentialRecordError::code(self)
    }
}

/// The record key of a use: credential, separator, agent.
pub fn key(shared: &CredentialUse) -> String {
    format!("{}{KEY_SEPARATOR}{}", shared.credential_id, shared.agent_id)
}

/// The record value of a use (JSON).
pub fn encode(shared: &CredentialUse) -> Result<Vec<u8>> {
    serde_json::to_vec(shared).map_err(|e| crate::error::Error::InvalidInput {
        context: "a credential use".into(),
        detail: e.to_string(),
    })
}

/// Turns one record into a use, or says why it is unusable.
pub fn decode_record(
    record_key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> std::result::Result<CredentialUse, CredentialRecordError> {
    let value = value.ok_or_else(|| CredentialRecordError::Malformed("no value".into()))?;
    let shared: CredentialUse = serde_json::from_slice(value)
        .map_err(|e| CredentialRecordError::Malformed(describe_json_error(&e)))?;
    if record_key != Some(key(&shared).as_bytes()) {
        return Err(CredentialRecordError::KeyMismatch);
    }
    Ok(shared)
}

/// Reads `topic` up to its current end, then follows it on a thread until `stop`.
pub fn follow(
    kafka: &KafkaConfig,
    topic: &str,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<Follower<CredentialUse>> {
    let what = RecordTopic {
        topic,
        name: "credentials",
        record: "credential",
        source: RecordSource::CredentialsTopic,
    };
    compacted::follow_refusing(kafka, what, decode_record, metrics, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> CredentialUse {
        CredentialUse {
            credential_id: "cred-1".into(),
            agent_id: "agent-a".into(),
            first_use_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_use_round_trips_under_its_key() {
        let use_ = shared();
        let value = encode(&use_).unwrap();
        let decoded = decode_record(Some(key(&use_).as_bytes()), Some(&value)).unwrap();
        assert_eq!(decoded, use_);
    }

    #[test]
    fn tombstones_garbage_and_wrong_keys_are_refused_with_codes() {
        let value = encode(&shared()).unwrap();
        let code = |key: Option<&[u8]>, value: Option<&[u8]>| {
            decode_record(key, value).unwrap_err().code()
        };
        assert_eq!(code(Some(b"cred-1"), None), "malformed");
        assert_eq!(code(Some(b"cred-1"), Some(b"{")), "malformed");
        assert_eq!(code(Some(b"cred-1"), Some(&value)), "key_mismatch");
        assert_eq!(code(None, Some(&value)), "key_mismatch");
    }
}
