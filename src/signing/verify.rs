//! Verifying commands, as an enforcer does.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use super::canonical::signed_bytes;
use super::keys::{key_id, read_key_file};
use crate::error::{Error, Result};
use crate::model::time::parse_rfc3339;

/// Why a command must not be acted on. Each has a stable code for scripts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a JSON object, or a field the check needs is missing or mistyped.
    #[error("malformed command: {0}")]
    Malformed(String),
    /// No `signature` field.
    #[error("unsigned")]
    Unsigned,
    /// Signed by a key this verifier does not trust.
    #[error("signed by unknown key {0}")]
    UnknownKey(String),
    /// The signature does not match the command's contents.
    #[error("bad signature (the command was altered, or signed by another key)")]
    BadSignature,
    /// Authentic, but past its `expires_at`.
    #[error("expired at {0}")]
    Expired(String),
}

impl Rejection {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Unsigned => "unsigned",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired(_) => "expired",
        }
    }
}

/// Checks commands against one trusted public key.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: VerifyingKey,
    key_id: String,
}

impl Verifier {
    /// Trusts `key`.
    pub fn new(key: VerifyingKey) -> Self {
        Verifier {
            key_id: key_id(&key),
            key,
        }
    }

    /// Loads a public key file written by `keygen`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_key_file(path, "public key")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::SigningKey(format!("{} is not an Ed25519 public key", path.display()))
        })?;
        Ok(Self::new(key))
    }

    /// The trusted key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Verifies one command (JSON text) at `now_ms`; returns its id when it may be acted on.
    pub fn verify(&self, text: &str, now_ms: i64) -> Result<String, Rejection> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| Rejection::Malformed(format!("no {name}")))
        };
        let command_id = field("command_id")?.to_owned();
        let signature = value.get("signature").ok_or(Rejection::Unsigned)?;
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
        if signed_by != self.key_id {
            return Err(Rejection::UnknownKey(signed_by.to_owned()));
        }
        let raw = BASE64
            .decode(part("value")?)
            .map_err(|_| Rejection::BadSignature)?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| Rejection::BadSignature)?;
        self.key
            .verify_strict(&signed_bytes(&value), &Signature::from_bytes(&raw))
            .map_err(|_| Rejection::BadSignature)?;
        let expires_at = field("expires_at")?;
        let expires = parse_rfc3339(expires_at)
            .ok_or_else(|| Rejection::Malformed("bad expires_at".into()))?;
        if now_ms >= expires {
            return Err(Rejection::Expired(expires_at.to_owned()));
        }
        Ok(command_id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Signer;
    use super::*;
    use crate::model::{Command, CommandAction, CommandReason};

    fn command() -> Command {
        Command {
            schema_version: 1,
            command_id: "c".repeat(32),
            time: "2026-01-05T10:00:00.000Z".into(),
            action: CommandAction::RevokeCredential,
            agent_id: "billing-bot".into(),
            credential_id: Some("k1".into()),
            owner: Some("ana@example.com".into()),
            reason: CommandReason {
                alert_id: "a".repeat(32),
                summary: "billing-bot used credential k1 after it expired".into(),
            },
            expires_at: "2026-01-05T14:00:00.000Z".into(),
            issued_by: "agentwatch".into(),
            signature: None,
        }
    }

    fn signed(signer: &Signer) -> String {
        let mut command = command();
        signer.sign(&mut command).unwrap();
        serde_json::to_string(&command).unwrap()
    }

    const BEFORE_EXPIRY: i64 = 1_767_610_000_000;

    #[test]
    fn a_signed_command_verifies_and_every_tampering_fails() {
        let signer = Signer::from_seed([7; 32]);
        let verifier = Verifier::new(signer.public_key());
        let line = signed(&signer);
        assert_eq!(verifier.verify(&line, BEFORE_EXPIRY), Ok("c".repeat(32)));

        let changed = line.replace("\"revoke_credential\"", "\"suspend_agent\"");
        assert_eq!(
            verifier.verify(&changed, BEFORE_EXPIRY),
            Err(Rejection::BadSignature)
        );

        let mut value: Value = serde_json::from_str(&line).unwrap();
        let sig = value["signature"]["value"].as_str().unwrap().to_owned();
        let mut raw = BASE64.decode(&sig).unwrap();
        raw[10] ^= 0x01;
        value["signature"]["value"] = Value::String(BASE64.encode(&raw));
        assert_eq!(
            verifier.verify(&value.to_string(), BEFORE_EXPIRY),
            Err(Rejection::BadSignature)
        );

        let unsigned = serde_json::to_string(&command()).unwrap();
        assert_eq!(
            verifier.verify(&unsigned, BEFORE_EXPIRY),
            Err(Rejection::Unsigned)
        );

        let other = Signer::from_seed([8; 32]);
        let foreign = signed(&other);
        assert!(matches!(
            verifier.verify(&foreign, BEFORE_EXPIRY),
            Err(Rejection::UnknownKey(_))
        ));
        // A forger who copies the trusted key id still fails the signature check.
        let forged = foreign.replace(other.key_id(), signer.key_id());
        assert_eq!(
            verifier.verify(&forged, BEFORE_EXPIRY),
            Err(Rejection::BadSignature)
        );

        let after = parse_rfc3339("2026-01-05T14:00:00Z").unwrap();
        assert!(matches!(
            verifier.verify(&line, after),
            Err(Rejection::Expired(_))
        ));
    }

    #[test]
    fn field_order_and_whitespace_do_not_matter() {
        let signer = Signer::from_seed([9; 32]);
        let verifier = Verifier::new(signer.public_key());
        let value: Value = serde_json::from_str(&signed(&signer)).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert!(verifier.verify(&pretty, BEFORE_EXPIRY).is_ok());
    }
}
