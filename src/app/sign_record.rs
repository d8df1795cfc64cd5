//! `agentwatch sign-record`: signs approval or registry records so that an engine with
//! `trusted_keys` accepts them (for operators, approval tooling and tests).

use std::io::Write;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::signing::{sign_record, RecordKind, Signer};

/// Signs every record in `input`, which is one JSON object (pretty-printed or not), a
/// JSON list, or one object per line; writes the signed records to `out` in the same
/// arrangement (a list stays a list, anything else becomes one object per line). The
/// contract of each record is told by its fields (see [`RecordKind::of`]) unless
/// `kind` says it. Returns how many were signed.
pub fn sign_records(
    signer: &Signer,
    kind: Option<RecordKind>,
    input: &str,
    out: &mut dyn Write,
) -> Result<usize> {
    let sign = |mut record: Value| -> Result<Value> {
        let kind = kind.unwrap_or_else(|| RecordKind::of(&record));
        sign_record(signer, kind, &mut record)?;
        Ok(record)
    };
    let write = |out: &mut dyn Write, value: &Value| -> Result<()> {
        serde_json::to_writer(&mut *out, value)
            .map_err(|e| Error::io("writing signed records", e.into()))?;
        writeln!(out).map_err(|e| Error::io("writing signed records", e))
    };
    match serde_json::from_str::<Value>(input) {
        Ok(Value::Array(records)) => {
            let count = records.len();
            let signed = records.into_iter().map(sign).collect::<Result<Vec<_>>>()?;
            write(out, &Value::Array(signed))?;
            Ok(count)
        }
        Ok(record @ Value::Object(_)) => {
            write(out, &sign(record)?)?;
            Ok(1)
        }
        _ => {
            let mut count = 0;
            for (index, line) in input.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let record: Value =
                    serde_json::from_str(line).map_err(|e| Error::InvalidInput {
                        context: format!("record on line {}", index + 1),
                        detail: crate::approvals::source::describe_json_error(&e),
                    })?;
                write(out, &sign(record)?)?;
                count += 1;
            }
            Ok(count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::TrustedKeys;

    #[test]
    fn signs_objects_lists_and_lines_so_trusted_keys_accept_them() {
        let signer = Signer::from_seed([2; 32]);
        let trust = TrustedKeys::new([signer.public_key()]);
        let approval = r#"{"approval_id":"a","agent_id":"b","actions":["delete"],"approved_by":"c","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-02T00:00:00Z"}"#;
        let registry = r#"{"agent_id":"b","owner":"c@example.com"}"#;
        let mut out = Vec::new();
        let lines = format!("{approval}\n\n{registry}\n");
        assert_eq!(sign_records(&signer, None, &lines, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let signed: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(trust.verify(RecordKind::Approval, &signed[0]), Ok(()));
        assert_eq!(trust.verify(RecordKind::AgentRecord, &signed[1]), Ok(()));

        let mut out = Vec::new();
        let list = format!("[{approval}, {approval}]");
        assert_eq!(sign_records(&signer, None, &list, &mut out).unwrap(), 2);
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value.as_array().map(Vec::len), Some(2));

        let mut out = Vec::new();
        assert!(sign_records(&signer, None, "not json", &mut out).is_err());
    }
}
