//! Fleet-wide knowledge shared by every instance through compacted topics: which agent
//! first used each credential ([`crate::pipeline::CredentialLedger`]) and which agents
//! show a fleet pattern ([`crate::pipeline::FleetContext`]). Each instance writes what
//! it learns and follows the whole topic from the beginning.
//!
//! A record's key names the fact, not just its subject: for credentials, the credential
//! *and* the agent. Compaction keeps the latest record of a key, and the latest use of a
//! credential is not its first; with one key per (credential, agent) the topic keeps
//! every agent's first use, and each instance takes the earliest. Merges are order-free
//! (earliest first use, latest sighting), so all instances converge whatever order the
//! records arrive in. Records are facts learned from events, never commands: a forged
//! one can at worst raise or absorb an alert, which is why these topics need no
//! signature, unlike the registry and approvals.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::compacted::{self, Arrival, RecordTopic, Refusal};
use crate::approvals::source::describe_json_error;
use crate::config::KafkaConfig;
use crate::detect::FleetScope;
use crate::error::Result;
use crate::pipeline::{CredentialUse, FleetRecord};
use crate::telemetry::{Metrics, Output, RecordSource};

/// Separates the parts of a record's key (a control character no id can usefully
/// contain).
const KEY_SEPARATOR: char = '\u{1f}';

/// A fact shared through a topic: its JSON value and the key that names it.
pub trait SharedRecord: Serialize + DeserializeOwned + Send + 'static {
    /// Reader name and log noun, e.g. `credentials`.
    const NAME: &'static str;
    /// Where refused records are counted.
    const SOURCE: RecordSource;
    /// Which output the produced records are counted under.
    const OUTPUT: Output;
    /// The parts of the record's key.
    fn key_parts(&self) -> Vec<String>;

    /// The record key: the parts joined by the separator.
    fn key(&self) -> String {
        self.key_parts().join(&KEY_SEPARATOR.to_string())
    }
}

impl SharedRecord for CredentialUse {
    const NAME: &'static str = "credentials";
    const SOURCE: RecordSource = RecordSource::CredentialsTopic;
    const OUTPUT: Output = Output::Credentials;
    fn key_parts(&self) -> Vec<String> {
        vec![self.credential_id.clone(), self.agent_id.clone()]
    }
}

impl SharedRecord for FleetRecord {
    const NAME: &'static str = "fleet";
    const SOURCE: RecordSource = RecordSource::FleetTopic;
    const OUTPUT: Output = Output::Fleet;
    fn key_parts(&self) -> Vec<String> {
        match self {
            FleetRecord::Sighting(sighting) => {
                let scope = match sighting.scope {
                    FleetScope::Novelty => "novelty",
                    FleetScope::Failures => "failures",
                };
                vec![
                    scope.to_owned(),
                    sighting.system.clone(),
                    sighting.agent_id.clone(),
                ]
            }
            FleetRecord::PeerUse(use_) => vec![
                "peer".to_owned(),
                use_.owner.clone(),
                use_.system.clone(),
                use_.agent_id.clone(),
            ],
            // The time is part of the key: compaction keeps the latest record per
            // key, and a later first sighting must not replace an earlier one.
            FleetRecord::Joined(joined) => vec![
                "joined".to_owned(),
                joined.agent_id.clone(),
                joined.first_seen_ms.to_string(),
            ],
        }
    }
}

/// Why a shared record was refused; its content is not repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedRecordError {
    /// No value (a tombstone), or not the topic's JSON object.
    #[error("not a shared record of this topic ({0})")]
    Malformed(String),
    /// The key does not name the record's fact.
    #[error("the record's key differs from the one its fields give")]
    KeyMismatch,
}

impl SharedRecordError {
    /// Stable code, the `code` label of `agentwatch_records_rejected_total`.
    pub fn code(&self) -> &'static str {
        match self {
            SharedRecordError::Malformed(_) => "malformed",
            SharedRecordError::KeyMismatch => "key_mismatch",
        }
    }
}

impl Refusal for SharedRecordError {
    fn code(&self) -> &'static str {
        SharedRecordError::code(self)
    }
}

/// The record value (JSON).
pub fn encode<T: SharedRecord>(record: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| crate::error::Error::InvalidInput {
        context: format!("a shared {} record", T::NAME),
        detail: e.to_string(),
    })
}

/// Turns one record into a fact, or says why it is unusable.
pub fn decode_record<T: SharedRecord>(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> std::result::Result<T, SharedRecordError> {
    let value = value.ok_or_else(|| SharedRecordError::Malformed("no value".into()))?;
    let record: T = serde_json::from_slice(value)
        .map_err(|e| SharedRecordError::Malformed(describe_json_error(&e)))?;
    if key != Some(record.key().as_bytes()) {
        return Err(SharedRecordError::KeyMismatch);
    }
    Ok(record)
}

/// Reads `topic` from the beginning and follows it on a thread of its own until `stop`
/// (see [`compacted::follow_in_background`]).
pub fn follow<T: SharedRecord>(
    kafka: &KafkaConfig,
    topic: &str,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<(Receiver<Arrival<T>>, JoinHandle<()>)> {
    let what = RecordTopic {
        topic,
        name: T::NAME,
        record: T::NAME,
        source: T::SOURCE,
    };
    compacted::follow_refusing_in_background(kafka, what, decode_record::<T>, metrics, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential_use() -> CredentialUse {
        CredentialUse {
            credential_id: "cred-1".into(),
            agent_id: "agent-a".into(),
            first_use_ms: 1_700_000_000_000,
        }
    }

    fn sighting() -> FleetRecord {
        FleetRecord::Sighting(crate::pipeline::FleetSighting {
            scope: FleetScope::Failures,
            system: "email".into(),
            agent_id: "agent-a".into(),
            time_ms: 1_700_000_000_000,
            announced_from_ms: 0,
            announced_until_ms: 0,
            announced_episode_ms: None,
        })
    }

    fn round_trip<T: SharedRecord + PartialEq + std::fmt::Debug>(record: T) {
        let value = encode(&record).unwrap();
        let decoded: T = decode_record(Some(record.key().as_bytes()), Some(&value)).unwrap();
        assert_eq!(decoded, record);
    }

    #[test]
    fn records_round_trip_under_their_keys() {
        round_trip(credential_use());
        round_trip(sighting());
        assert_eq!(credential_use().key(), "cred-1\u{1f}agent-a");
        assert_eq!(sighting().key(), "failures\u{1f}email\u{1f}agent-a");
        let peer_use = FleetRecord::PeerUse(crate::baseline::PeerUse {
            owner: "ana@corp".into(),
            system: "wiki".into(),
            agent_id: "agent-a".into(),
            first_ms: 1_700_000_000_000,
        });
        round_trip(peer_use.clone());
        assert_eq!(peer_use.key(), "peer\u{1f}ana@corp\u{1f}wiki\u{1f}agent-a");
        assert!(String::from_utf8(encode(&peer_use).unwrap())
            .unwrap()
            .starts_with(r#"{"record":"peer_use","owner":"ana@corp""#));
    }

    #[test]
    fn tombstones_garbage_and_wrong_keys_are_refused_with_codes() {
        let value = encode(&credential_use()).unwrap();
        let code = |key: Option<&[u8]>, value: Option<&[u8]>| {
            decode_record::<CredentialUse>(key, value)
                .unwrap_err()
                .code()
        };
        assert_eq!(code(Some(b"cred-1"), None), "malformed");
        assert_eq!(code(Some(b"cred-1"), Some(b"{")), "malformed");
        assert_eq!(code(Some(b"cred-1"), Some(&value)), "key_mismatch");
        assert_eq!(code(None, Some(&value)), "key_mismatch");
        let sighting = encode(&sighting()).unwrap();
        assert_eq!(
            code(Some(b"failures\x1femail\x1fagent-a"), Some(&sighting)),
            "malformed"
        );
    }
}
