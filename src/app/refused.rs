//! Reporting a record refused in an operator's file (approvals, registry): the one way
//! both are logged and counted, so dashboards and log searches treat them alike.

use std::fmt::Display;
use std::path::Path;

use crate::telemetry::{Metrics, RecordSource};

/// A refused record of a file: where it is, and why.
#[derive(Debug, Clone, Copy)]
pub struct FileRefusal<'a> {
    /// The file.
    pub path: &'a Path,
    /// The record, as the log names it: `"{record} record refused"`.
    pub record: &'static str,
    /// The 1-based line (or position in a list) of the record.
    pub at: usize,
    /// The stable code (the `code` label of `agentwatch_records_rejected_total`).
    pub code: &'static str,
    /// The `source` label it is counted under.
    pub source: RecordSource,
}

/// Logs the refusal by file, line and code (never by the record's content, which may
/// be forged and may name people) and counts it in `metrics`.
pub fn report(refusal: FileRefusal<'_>, error: &dyn Display, metrics: Option<&Metrics>) {
    let record = refusal.record;
    tracing::warn!(
        file = %refusal.path.display(),
        record = refusal.at,
        code = refusal.code,
        error = %error,
        "{record} record refused"
    );
    if let Some(metrics) = metrics {
        metrics.record_rejected(refusal.source, refusal.code);
    }
}
