//! `agentwatch verify`: the reference check an enforcer runs before acting on commands.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};
use crate::signing::Verifier;

/// What a verification run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Commands that may be acted on.
    pub accepted: u64,
    /// Commands that must not be, with the line and the reason code.
    pub rejected: Vec<(u64, &'static str)>,
}

impl VerifyReport {
    /// True when every command verified and there was at least one.
    pub fn all_valid(&self) -> bool {
        self.rejected.is_empty() && self.accepted > 0
    }
}

/// Verifies every non-empty line of `input` at `now_ms`, writing one verdict per line to
/// `out` (`ok <command_id>` or `rejected line N [code]: reason`).
pub fn verify_commands(
    verifier: &Verifier,
    input: &mut dyn BufRead,
    now_ms: i64,
    out: &mut dyn Write,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let write_error = |e| Error::io("writing verdicts", e);
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::io("reading commands", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let number = index as u64 + 1;
        match verifier.verify(&line, now_ms) {
            Ok(command_id) => {
                report.accepted += 1;
                writeln!(out, "ok {command_id}").map_err(write_error)?;
            }
            Err(rejection) => {
                report.rejected.push((number, rejection.code()));
                writeln!(
                    out,
                    "rejected line {number} [{}]: {rejection}",
                    rejection.code()
                )
                .map_err(write_error)?;
            }
        }
    }
    Ok(report)
}
