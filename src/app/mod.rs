//! The commands behind the CLI. They live in the library so that tests exercise exactly
//! what users run; `main.rs` only parses arguments and prints errors.

pub mod approval_loop;
pub mod approvals;
pub mod cli;
pub mod demo;
pub mod inspect;
pub mod progress;
pub mod refused;
pub mod render;
pub mod replay;
pub mod run;
pub mod setup;
pub mod sign_record;
pub mod simulate;
pub mod tail;
pub mod verify;
