//! Following the compacted registry topic (key = agent_id, value = agent-record v1 JSON,
//! empty value = the agent is removed), so identity changes take effect without a
//! restart.
//!
//! [`follow`] first reads up to the ends it found at start, so the service begins with
//! the registry as it stands, then keeps reading on a thread of its own (see
//! [`super::compacted`]). With `[registry] trusted_keys`, only records signed by one of
//! the keys take effect (see [`crate::signing::record`]), and tombstones are refused:
//! an unsigned removal could take an agent's boundary away.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;

use super::compacted::{self, Follower, RecordTopic, Refusal};
use crate::approvals::source::describe_json_error;
use crate::config::KafkaConfig;
use crate::error::Result;
use crate::identity::{AgentRecord, AgentRecordV1, RegistryUpdate};
use crate::signing::{RecordKind, Rejection, TrustedKeys};
use crate::telemetry::{Metrics, RecordSource};

/// Why a registry record was refused. It never takes effect; its content is not
/// repeated in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryRecordError {
    /// No key, or a key that is not UTF-8.
    #[error("the record has no UTF-8 key (the key must be the agent_id)")]
    NoKey,
    /// Not JSON, or not shaped like an agent-record v1.
    #[error("not an agent-record v1 ({0})")]
    Malformed(String),
    /// The key is not the record's `agent_id`.
    #[error("the record's key differs from its agent_id")]
    KeyMismatch,
    /// Shaped right, but a field is unusable.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// Trusted keys are configured and the record's signature does not satisfy them (a
    /// tombstone, which cannot be signed, is `unsigned`).
    #[error("signature refused: {0}")]
    Signature(Rejection),
}

impl RegistryRecordError {
    /// Stable code, the `code` label of `agentwatch_records_rejected_total`.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryRecordError::NoKey | RegistryRecordError::Malformed(_) => "malformed",
            RegistryRecordError::KeyMismatch => "key_mismatch",
            RegistryRecordError::Invalid(_) => "invalid",
            RegistryRecordError::Signature(rejection) => rejection.code(),
        }
    }
}

/// Turns one registry record into a change, or says why it is unusable. With `trust`
/// holding keys, the record must be signed by one of them.
pub fn decode_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    trust: Option<&TrustedKeys>,
) -> std::result::Result<RegistryUpdate, RegistryRecordError> {
    let key = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .ok_or(RegistryRecordError::NoKey)?;
    let trust = trust.filter(|t| !t.is_empty());
    let value = match value {
        None | Some([]) if trust.is_some() => {
            return Err(RegistryRecordError::Signature(Rejection::Unsigned))
        }
        None | Some([]) => return Ok(RegistryUpdate::Remove(key.to_owned())),
        Some(v) => v,
    };
    let value: Value = serde_json::from_slice(value)
        .map_err(|e| RegistryRecordError::Malformed(describe_json_error(&e)))?;
    if let Some(trust) = trust {
        trust
            .verify(RecordKind::AgentRecord, &value)
            .map_err(RegistryRecordError::Signature)?;
    }
    let spec: AgentRecordV1 = serde_json::from_value(value)
        .map_err(|e| RegistryRecordError::Malformed(describe_json_error(&e)))?;
    if spec.agent_id != key {
        return Err(RegistryRecordError::KeyMismatch);
    }
    AgentRecord::compile(spec, false)
        .map(|record| RegistryUpdate::Upsert(Box::new(record)))
        .map_err(|problems| RegistryRecordError::Invalid(problems.join("; ")))
}

impl Refusal for RegistryRecordError {
    fn code(&self) -> &'static str {
        RegistryRecordError::code(self)
    }
}

/// Reads `topic` up to its current end, then follows it on a thread until `stop`.
/// Refused records are logged by position and code and counted in `metrics`.
pub fn follow(
    kafka: &KafkaConfig,
    topic: &str,
    trust: Option<TrustedKeys>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<Follower<RegistryUpdate>> {
    let what = RecordTopic {
        topic,
        name: "registry",
        record: "registry",
        source: RecordSource::RegistryTopic,
    };
    let decode =
        move |key: Option<&[u8]>, value: Option<&[u8]>| decode_record(key, value, trust.as_ref());
    compacted::follow_refusing(kafka, what, decode, metrics, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{sign_record, Signer};

    #[test]
    fn tombstones_remove_and_mismatched_keys_are_refused() {
        assert!(matches!(
            decode_record(Some(b"a"), None, None),
            Ok(RegistryUpdate::Remove(id)) if id == "a"
        ));
        let record = br#"{"agent_id":"a","owner":""}"#;
        assert!(matches!(
            decode_record(Some(b"a"), Some(record), None),
            Ok(RegistryUpdate::Upsert(r)) if r.owner().is_none()
        ));
        assert!(matches!(
            decode_record(Some(b"b"), Some(record), None),
            Err(RegistryRecordError::KeyMismatch)
        ));
        assert_eq!(
            decode_record(None, Some(record), None).unwrap_err().code(),
            "malformed"
        );
        assert_eq!(
            decode_record(Some(b"a"), Some(b"{"), None)
                .unwrap_err()
                .code(),
            "malformed"
        );
    }

    #[test]
    fn with_trusted_keys_only_signed_records_take_effect() {
        let signer = Signer::from_seed([6; 32]);
        let trust = TrustedKeys::new([signer.public_key()]);
        let plain = br#"{"agent_id":"a","owner":"ana@example.com","allowed_systems":["crm"]}"#;
        let code = |key: &[u8], value: Option<&[u8]>| {
            decode_record(Some(key), value, Some(&trust))
                .unwrap_err()
                .code()
        };
        assert_eq!(code(b"a", Some(plain)), "unsigned");
        assert_eq!(code(b"a", None), "unsigned", "a tombstone cannot be signed");
        let mut value: Value = serde_json::from_slice(plain).unwrap();
        sign_record(&signer, RecordKind::AgentRecord, &mut value).unwrap();
        let signed = serde_json::to_string(&value).unwrap();
        assert!(matches!(
            decode_record(Some(b"a"), Some(signed.as_bytes()), Some(&trust)),
            Ok(RegistryUpdate::Upsert(r)) if r.allows_system("crm") == Some(true)
        ));
        let widened = signed.replace("[\"crm\"]", "[\"*\"]");
        assert_eq!(code(b"a", Some(widened.as_bytes())), "bad_signature");
    }
}
