//! Key files and the signer.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::canonical::signed_bytes;
use crate::error::{Error, Result};
use crate::model::{Command, CommandSignature};

/// Environment variable that may hold the signing key (base64 of the 32-byte seed), for
/// deployments that inject secrets as variables rather than files.
pub const SIGNING_KEY_ENV: &str = "AGENTWATCH_SIGNING_KEY";

/// The key id: the first 8 bytes of the BLAKE3 hash of the public key, in hex. Short
/// enough to read, long enough that two keys in rotation never collide.
pub fn key_id(public: &VerifyingKey) -> String {
    let hash = blake3::hash(public.as_bytes());
    hash.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the one base64 line of a key file (lines starting with `#` are comments).
pub(super) fn decode_key_text(text: &str, what: &str) -> Result<[u8; 32]> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| Error::SigningKey(format!("{what} is empty")))?;
    let bytes = BASE64
        .decode(line)
        .map_err(|_| Error::SigningKey(format!("{what} is not base64")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| Error::SigningKey(format!("{what} holds {} bytes, not 32", b.len())))
}

pub(super) fn read_key_file(path: &Path, what: &str) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {what} {}", path.display()), e))?;
    decode_key_text(&text, &format!("{what} {}", path.display()))
}

/// Signs commands. Its `Debug` never shows the key.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        Signer { key, key_id }
    }

    /// A fresh random key (for `keygen`, and for a demo run without a configured key).
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::SigningKey(format!("no randomness from the OS: {e}")))?;
        Ok(Self::from_seed(seed))
    }

    /// Loads the key from `file` if given, else from [`SIGNING_KEY_ENV`] if set.
    /// `Ok(None)` when neither is configured.
    pub fn resolve(file: Option<&Path>) -> Result<Option<Self>> {
        if let Some(path) = file {
            return Ok(Some(Self::from_seed(read_key_file(path, "signing key")?)));
        }
        match std::env::var(SIGNING_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Ok(Some(Self::from_seed(decode_key_text(
                &text,
                &format!("${SIGNING_KEY_ENV}"),
            )?))),
            _ => Ok(None),
        }
    }

    /// The id of this key, as commands name it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, as `keygen` writes it.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A signature over `bytes` (already canonical and domain-prefixed), with this key's id.
    pub(super) fn signature_over(&self, bytes: &[u8]) -> CommandSignature {
        CommandSignature {
            algorithm: "ed25519".into(),
            key_id: self.key_id.clone(),
            value: BASE64.encode(self.key.sign(bytes).to_bytes()),
        }
    }

    /// Signs `command` in place (replacing any earlier signature).
    pub fn sign(&self, command: &mut Command) -> Result<()> {
        command.signature = None;
        let value = serde_json::to_value(&*command).map_err(|e| Error::InvalidInput {
            context: format!("encoding command {}", command.command_id),
            detail: e.to_string(),
        })?;
        command.signature = Some(self.signature_over(&signed_bytes(&value)));
        Ok(())
    }
}

/// Where `keygen` wrote a key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// The signing key (mode 0600).
    pub secret: PathBuf,
    /// The public key, for enforcers.
    pub public: PathBuf,
    /// The key id.
    pub key_id: String,
}

/// Writes a fresh key pair to `<prefix>.key` and `<prefix>.pub`. Refuses to overwrite an
/// existing signing key: losing one silently would orphan every enforcer's trust in it.
pub fn write_key_pair(prefix: &Path) -> Result<KeyPairFiles> {
    let signer = Signer::generate()?;
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    let id = signer.key_id().to_owned();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&secret).map_err(|e| {
        Error::io(
            format!("creating {} (it must not exist yet)", secret.display()),
            e,
        )
    })?;
    writeln!(
        file,
        "# agentwatch Ed25519 signing key {id}. Secret: give it only to agentwatch.\n{}",
        BASE64.encode(signer.key.to_bytes())
    )
    .map_err(|e| Error::io(format!("writing {}", secret.display()), e))?;
    std::fs::write(
        &public,
        format!(
            "# agentwatch Ed25519 public key {id}, for enforcers: agentwatch verify --public-key {}\n{}\n",
            public.display(),
            BASE64.encode(signer.public_key().as_bytes())
        ),
    )
    .map_err(|e| Error::io(format!("writing {}", public.display()), e))?;
    Ok(KeyPairFiles {
        secret,
        public,
        key_id: id,
    })
}
