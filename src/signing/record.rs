//! Signed input records: approvals and agent-registry records.
//!
//! An approval is a human's "yes" and a registry record is an agent's boundary; both are
//! read from topics that many systems can write to. With trusted keys configured
//! (`[approvals] trusted_keys`, `[registry] trusted_keys`), a record takes effect only
//! if it carries an Ed25519 signature by one of them, made exactly as command
//! signatures are (README, "Verifying commands") over the record without its
//! `signature` field, behind a prefix naming the record's contract:
//!
//! ```text
//! "agentwatch.agent-approval.v1\n" ++ canonical JSON     (approvals)
//! "agentwatch.agent-record.v1\n"   ++ canonical JSON     (registry records)
//! ```
//!
//! The prefix keeps a signature made for one contract (or for a command) from ever
//! verifying as another. The check runs on the JSON value as received, before it is
//! parsed, so defaults filled in by the parser cannot change what was signed.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use super::canonical::signed_bytes_in;
use super::keys::{decode_key_text, key_id, read_key_file};
use super::{Rejection, Signer};
use crate::error::{Error, Result};

/// Which contract a signed record belongs to (it selects the domain prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// agent-approval v1.
    Approval,
    /// agent-record v1 (the agent registry).
    AgentRecord,
}

impl RecordKind {
    /// The domain-separation prefix of this contract's signatures.
    pub fn domain(self) -> &'static [u8] {
        match self {
            RecordKind::Approval => b"agentwatch.agent-approval.v1\n",
            RecordKind::AgentRecord => b"agentwatch.agent-record.v1\n",
        }
    }

    /// Guesses the contract of a record: an `approval_id` field makes it an approval.
    /// (`sign-record` uses this so operators need not say what they sign.)
    pub fn of(value: &Value) -> Self {
        if value.get("approval_id").is_some() {
            RecordKind::Approval
        } else {
            RecordKind::AgentRecord
        }
    }

    /// The contract's name, for logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Approval => "agent-approval",
            RecordKind::AgentRecord => "agent-record",
        }
    }
}

/// Signs `record` (a JSON object) in place with `signer`, replacing any earlier
/// signature. Operators use it through `agentwatch sign-record`.
pub fn sign_record(signer: &Signer, kind: RecordKind, record: &mut Value) -> Result<()> {
    let Value::Object(map) = record else {
        return Err(Error::InvalidInput {
            context: "signing a record".into(),
            detail: "the record is not a JSON object".into(),
        });
    };
    map.remove("signature");
    let signature = signer.signature_over(&signed_bytes_in(kind.domain(), record));
    let encoded = serde_json::to_value(signature).map_err(|e| Error::InvalidInput {
        context: "signing a record".into(),
        detail: e.to_string(),
    })?;
    if let Value::Object(map) = record {
        map.insert("signature".into(), encoded);
    }
    Ok(())
}

/// The public keys whose signatures make a record take effect.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl TrustedKeys {
    /// Trusts these keys.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        TrustedKeys {
            keys: keys.into_iter().map(|k| (key_id(&k), k)).collect(),
        }
    }

    /// Loads keys from config entries: each is either a public key file written by
    /// `keygen` or the key's base64 line itself (convenient for `${ENV}` values).
    pub fn load(entries: &[String]) -> Result<Self> {
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            let bytes = match decode_key_text(entry, "trusted key") {
                Ok(bytes) => bytes,
                Err(_) => read_key_file(Path::new(entry), "trusted key")?,
            };
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
                Error::SigningKey(format!(
                    "trusted key {entry:?} is not an Ed25519 public key"
                ))
            })?;
            keys.push(key);
        }
        Ok(Self::new(keys))
    }

    /// True when no key is trusted (records are then not checked at all).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of the trusted keys, for the start-up log.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Checks the signature of `record` (the JSON value as received).
    pub fn verify(&self, kind: RecordKind, record: &Value) -> Result<(), Rejection> {
        let signature = record.get("signature").ok_or(Rejection::Unsigned)?;
        let part = |name: &str| {
            signature
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| Rejection::Malformed(format!("no signature.{name}")))
        };
        if part("algorithm")? != "ed25519" {
            return Err(Rejection::Malformed(
                "signature.algorithm is not ed25519".into(),
            ));
        }
        let signed_by = part("key_id")?;
        let Some((_, key)) = self.keys.iter().find(|(id, _)| id == signed_by) else {
            return Err(Rejection::UnknownKey(signed_by.to_owned()));
        };
        let raw = BASE64
            .decode(part("value")?)
            .map_err(|_| Rejection::BadSignature)?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| Rejection::BadSignature)?;
        key.verify_strict(
            &signed_bytes_in(kind.domain(), record),
            &Signature::from_bytes(&raw),
        )
        .map_err(|_| Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Value {
        serde_json::json!({"approval_id": "apr-1", "agent_id": "billing-bot",
            "actions": ["delete"], "approved_by": "ana@example.com",
            "issued_at": "2026-10-05T09:00:00Z", "expires_at": "2026-10-05T11:00:00Z"})
    }

    #[test]
    fn a_signed_record_verifies_and_tampering_or_other_keys_fail() {
        let signer = Signer::from_seed([3; 32]);
        let trusted = TrustedKeys::new([signer.public_key()]);
        let mut record = approval();
        assert_eq!(
            trusted.verify(RecordKind::Approval, &record),
            Err(Rejection::Unsigned)
        );
        sign_record(&signer, RecordKind::of(&record), &mut record).unwrap();
        assert_eq!(trusted.verify(RecordKind::Approval, &record), Ok(()));
        // Key order and whitespace do not matter; the contents do.
        let pretty: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&record).unwrap()).unwrap();
        assert_eq!(trusted.verify(RecordKind::Approval, &pretty), Ok(()));
        let mut widened = record.clone();
        widened["actions"] = serde_json::json!(["*"]);
        assert_eq!(
            trusted.verify(RecordKind::Approval, &widened),
            Err(Rejection::BadSignature)
        );
        // A signature for one contract is no signature for another.
        assert_eq!(
            trusted.verify(RecordKind::AgentRecord, &record),
            Err(Rejection::BadSignature)
        );
        let other = Signer::from_seed([4; 32]);
        let mut foreign = approval();
        sign_record(&other, RecordKind::Approval, &mut foreign).unwrap();
        assert!(matches!(
            trusted.verify(RecordKind::Approval, &foreign),
            Err(Rejection::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_load_from_base64_lines_and_files() {
        let signer = Signer::from_seed([5; 32]);
        let line = BASE64.encode(signer.public_key().as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.pub");
        std::fs::write(&file, format!("# a comment\n{line}\n")).unwrap();
        let keys = TrustedKeys::load(&[line.clone(), file.display().to_string()]).unwrap();
        assert_eq!(keys.key_ids(), vec![signer.key_id(), signer.key_id()]);
        let missing = TrustedKeys::load(&["/nonexistent/key.pub".into()]).unwrap_err();
        assert_eq!(missing.code(), "io");
    }
}
