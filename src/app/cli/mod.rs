//! The flags of each command and the glue that turns them into library calls, so that
//! `main.rs` only parses and dispatches. Each file is one command (or a few tiny ones);
//! the work itself lives in the command's own `app` module.

pub mod demo;
pub mod replay;
pub mod service;
pub mod simulate;
pub mod tools;
pub mod validate;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::config::{KafkaConfig, ServiceConfig};
use crate::error::{Error, Result};

/// A flag set by the first SIGTERM or SIGINT; a second one exits at once.
pub fn shutdown_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .map_err(|e| Error::io("installing signal handlers", e))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .map_err(|e| Error::io("installing signal handlers", e))?;
    }
    Ok(flag)
}

/// Kafka settings for the client commands (`tail`, `simulate --to-kafka`).
fn kafka_at(brokers: String) -> KafkaConfig {
    KafkaConfig {
        brokers,
        ..ServiceConfig::default().kafka
    }
}

/// A usage error: flags that cannot work together or a value out of range.
fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}
