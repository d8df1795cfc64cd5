//! Signed response commands.
//!
//! Enforcers act on commands (revoke a credential, suspend an agent), so they must be
//! able to tell a command agentwatch issued from one anybody with write access to the
//! topic could forge. Every command carries an Ed25519 signature over its
//! [canonical encoding](canonical), with the id of the key that made it, so keys can be
//! rotated. `agentwatch keygen` makes a key pair; `agentwatch verify` is the reference
//! check an enforcer can run or reimplement (README, "Verifying commands").
//!
//! The same scheme protects what agentwatch *reads* (see [`record`]): approval and
//! registry records signed by a trusted key, so that write access to a topic is not
//! enough to grant an approval or widen an agent's boundary.

pub mod canonical;
mod keys;
pub mod record;
mod verify;

pub use keys::{key_id, write_key_pair, KeyPairFiles, Signer, SIGNING_KEY_ENV};
pub use record::{sign_record, RecordKind, TrustedKeys};
pub use verify::{Rejection, Verifier};
