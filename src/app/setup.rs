//! The one place every command assembles its engine from flags and config: detectors,
//! agent registry, command signer, state store options and metrics.
//!
//! `run`, `replay`, `demo`, `inspect` and `validate` used to each write "the detector
//! directory or the built-in set" and their own signer fallback; they now all call
//! here, so a new kind of engine input (a registry source, a key store) is one change.

use std::path::Path;
use std::sync::Arc;

use super::refused::FileRefusal;
use crate::approvals::ApprovalStore;
use crate::detect::DetectorSet;
use crate::error::Result;
use crate::identity::Registry;
use crate::pipeline::{Engine, EngineOptions};
use crate::signing::{Signer, TrustedKeys};
use crate::state::StateStore;
use crate::telemetry::{Metrics, RecordSource};

/// The detectors in `dir`, or the built-in set when no directory is named.
pub fn detectors(dir: Option<&Path>) -> Result<DetectorSet> {
    match dir {
        Some(dir) => DetectorSet::load_dir(dir),
        None => DetectorSet::builtin(),
    }
}

/// Loads an agent registry file and logs what it holds. With `trust` holding keys, a
/// record without a trusted signature never takes effect: it is logged by line and
/// code (never by content) and counted in `metrics`; the other records still load.
pub fn registry_file(
    path: &Path,
    trust: Option<&TrustedKeys>,
    metrics: Option<&Metrics>,
) -> Result<Registry> {
    let found = crate::identity::load_signed_file(path, trust)?;
    for refused in &found.refused {
        let refusal = FileRefusal {
            path,
            record: "registry",
            at: refused.line,
            code: refused.rejection.code(),
            source: RecordSource::RegistryFile,
        };
        super::refused::report(refusal, &refused.rejection, metrics);
    }
    let registry = Registry::new(found.records);
    tracing::info!(agents = registry.len(), refused = found.refused.len(), file = %path.display(), "registry loaded");
    Ok(registry)
}

/// What a command does when neither a key file nor `$AGENTWATCH_SIGNING_KEY` names a
/// signing key. Each command keeps the behaviour its help text documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutKey {
    /// Commands go out unsigned, silently (`replay`: signing is opt-in there).
    Unsigned,
    /// Commands go out unsigned, with a warning (`run`: enforcers that verify will
    /// refuse them).
    WarnUnsigned,
    /// A throwaway key made for this run (`demo`: shows signed commands by default).
    Throwaway,
}

/// The command signer: `file` if given, else `$AGENTWATCH_SIGNING_KEY`, else `fallback`.
pub fn signer(file: Option<&Path>, fallback: WithoutKey) -> Result<Option<Arc<Signer>>> {
    let signer = match (Signer::resolve(file)?, fallback) {
        (Some(signer), _) => Some(signer),
        (None, WithoutKey::Throwaway) => Some(Signer::generate()?),
        (None, WithoutKey::WarnUnsigned) => {
            tracing::warn!(
                "no signing key ([signing] key_file or $AGENTWATCH_SIGNING_KEY): commands are unsigned and enforcers that verify will refuse them"
            );
            None
        }
        (None, WithoutKey::Unsigned) => None,
    };
    if let Some(signer) = &signer {
        if fallback != WithoutKey::Throwaway {
            tracing::info!(key_id = signer.key_id(), "commands will be signed");
        }
    }
    Ok(signer.map(Arc::new))
}

/// Everything an [`Engine`] is built from, gathered by a command and assembled once.
pub struct EngineSetup {
    /// The running detectors.
    pub detectors: DetectorSet,
    /// The agent registry in force, if any.
    pub registry: Option<Registry>,
    /// The approvals in force, if an approval source is configured (`None`: any
    /// `approval_id` passes; see [`crate::approvals`]).
    pub approvals: Option<ApprovalStore>,
    /// The command signer, if commands are signed.
    pub signer: Option<Arc<Signer>>,
    /// Where counters go, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
    /// Cache size, policy and score recording.
    pub options: EngineOptions,
}

impl EngineSetup {
    /// A setup with `detectors`, default options and nothing else.
    pub fn new(detectors: DetectorSet) -> Self {
        EngineSetup {
            detectors,
            registry: None,
            approvals: None,
            signer: None,
            metrics: None,
            options: EngineOptions::default(),
        }
    }

    /// The engine over `store`.
    pub fn build(self, store: StateStore) -> Result<Engine> {
        let mut engine = Engine::new(self.detectors, store, self.options)?;
        if let Some(metrics) = self.metrics {
            engine = engine.with_metrics(metrics);
        }
        if let Some(registry) = self.registry {
            engine = engine.with_registry(registry);
        }
        if let Some(signer) = self.signer {
            engine = engine.with_signer(signer);
        }
        if let Some(approvals) = self.approvals {
            engine = engine.with_approvals(approvals);
        }
        Ok(engine)
    }
}
