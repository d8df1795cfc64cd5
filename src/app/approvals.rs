//! Loading approvals for the commands: `replay --approvals`, the `[approvals] file` of
//! `run`, and the demo.

use std::path::Path;

use super::refused::{self, FileRefusal};
use crate::approvals::source::{load_file, FileApprovals};
use crate::approvals::{ApprovalStore, ApprovalUpdate};
use crate::error::Result;
use crate::signing::TrustedKeys;
use crate::telemetry::{Metrics, RecordSource};

/// Reads an approvals file, logging (by line and code, never by content) and counting
/// every refused record. An unreadable file is an error; a bad record is not.
pub fn read_approvals_file(
    path: &Path,
    trust: Option<&TrustedKeys>,
    metrics: Option<&Metrics>,
) -> Result<FileApprovals> {
    let found = load_file(path, trust)?;
    for problem in &found.problems {
        let refusal = FileRefusal {
            path,
            record: "approval",
            at: problem.at,
            code: problem.error.code(),
            source: RecordSource::ApprovalsFile,
        };
        refused::report(refusal, &problem.error, metrics);
    }
    Ok(found)
}

/// A store holding the approvals of `path` (see [`read_approvals_file`]).
pub fn load_approval_store(
    path: &Path,
    grace_ms: i64,
    trust: Option<&TrustedKeys>,
    metrics: Option<&Metrics>,
) -> Result<ApprovalStore> {
    let found = read_approvals_file(path, trust, metrics)?;
    let mut store = ApprovalStore::new(grace_ms);
    for approval in found.approvals {
        store.apply(ApprovalUpdate::Upsert(Box::new(approval)));
    }
    tracing::info!(
        file = %path.display(),
        approvals = store.len(),
        refused = found.problems.len(),
        "approvals loaded"
    );
    Ok(store)
}

/// The start-up warning for a configuration that verifies no approval.
pub const UNVERIFIED_WARNING: &str = "no approval source configured: high_risk_action accepts ANY approval_id, so an agent can approve itself by inventing one; set [approvals] file or topic (replay: --approvals)";
