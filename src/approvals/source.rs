//! Where approvals come from: a file (JSON lines or one JSON list) and the compacted
//! `agent-approvals` topic (key = `approval_id`, empty value = withdrawn).
//!
//! A bad record never takes effect and never stops the others: each is reported with
//! its line (or topic position) and a [`RecordError`] code, and its content is never
//! repeated in logs or messages.

use std::path::Path;

use serde_json::Value;

pub use super::record::describe_json_error;
use super::{Approval, ApprovalUpdate, RecordError};
use crate::error::{Error, Result};
use crate::signing::TrustedKeys;

/// A refused record of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// 1-based line (of a JSON lines file) or 1-based position in a JSON list.
    pub at: usize,
    /// Why it was refused.
    pub error: RecordError,
}

/// What a file held.
#[derive(Debug, Clone, Default)]
pub struct FileApprovals {
    /// The usable approvals, in file order.
    pub approvals: Vec<Approval>,
    /// The refused records.
    pub problems: Vec<FileProblem>,
}

/// Parses approval records from `text`: one JSON list, one JSON object (pretty-printed
/// or not), or one JSON object per line (blank lines skipped). Signatures are checked
/// against `trust` when it holds keys.
pub fn parse_file_text(text: &str, trust: Option<&TrustedKeys>) -> FileApprovals {
    let mut found = FileApprovals::default();
    let mut take = |at: usize, value: std::result::Result<Value, RecordError>| match value
        .and_then(|v| Approval::from_value(v, trust))
    {
        Ok(approval) => found.approvals.push(approval),
        Err(error) => found.problems.push(FileProblem { at, error }),
    };
    let whole = serde_json::from_str::<Value>(text);
    match whole {
        Ok(Value::Array(list)) => {
            for (index, value) in list.into_iter().enumerate() {
                take(index + 1, Ok(value));
            }
            return found;
        }
        Ok(record @ Value::Object(_)) => {
            take(1, Ok(record));
            return found;
        }
        Err(e) if text.trim_start().starts_with('[') => {
            take(1, Err(RecordError::Malformed(describe_json_error(&e))));
            return found;
        }
        _ => {}
    }
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str::<Value>(line)
            .map_err(|e| RecordError::Malformed(describe_json_error(&e)));
        take(index + 1, value);
    }
    found
}

/// Reads an approvals file (see [`parse_file_text`]).
pub fn load_file(path: &Path, trust: Option<&TrustedKeys>) -> Result<FileApprovals> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading approvals {}", path.display()), e))?;
    Ok(parse_file_text(&text, trust))
}

/// Turns one record of the approvals topic into a change. A tombstone (no or empty
/// value) withdraws the approval named by the key: withdrawing can only take an
/// approval away, so it needs no signature.
pub fn decode_topic_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    trust: Option<&TrustedKeys>,
) -> std::result::Result<ApprovalUpdate, RecordError> {
    let key = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            RecordError::Malformed("no UTF-8 key (the key must be the approval_id)".into())
        })?;
    let value = match value {
        None | Some([]) => return Ok(ApprovalUpdate::Withdraw(key.to_owned())),
        Some(bytes) => bytes,
    };
    let value: Value = serde_json::from_slice(value)
        .map_err(|e| RecordError::Malformed(describe_json_error(&e)))?;
    let approval = Approval::from_value(value, trust)?;
    if approval.id() != key {
        return Err(RecordError::KeyMismatch);
    }
    Ok(ApprovalUpdate::Upsert(Box::new(approval)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{sign_record, RecordKind, Signer};

    const GOOD: &str = r#"{"approval_id":"apr-1","agent_id":"a","actions":["delete"],"approved_by":"ana@example.com","issued_at":"2026-10-05T09:00:00Z","expires_at":"2026-10-05T11:00:00Z"}"#;

    #[test]
    fn jsonl_and_lists_parse_and_bad_lines_are_reported_by_line() {
        let text = format!("{GOOD}\n\n{{\"approval_id\": 1}}\nnot json\n");
        let found = parse_file_text(&text, None);
        assert_eq!(found.approvals.len(), 1);
        let lines: Vec<(usize, &str)> = found
            .problems
            .iter()
            .map(|p| (p.at, p.error.code()))
            .collect();
        assert_eq!(lines, vec![(3, "malformed"), (4, "malformed")]);
        let list = format!("[{GOOD}, {GOOD}]");
        assert_eq!(parse_file_text(&list, None).approvals.len(), 2);
        let value: Value = serde_json::from_str(GOOD).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let found = parse_file_text(&pretty, None);
        assert_eq!((found.approvals.len(), found.problems.len()), (1, 0));
    }

    #[test]
    fn topic_records_need_matching_keys_and_trusted_signatures() {
        assert_eq!(
            decode_topic_record(Some(b"apr-1"), None, None),
            Ok(ApprovalUpdate::Withdraw("apr-1".into()))
        );
        assert!(matches!(
            decode_topic_record(Some(b"apr-1"), Some(GOOD.as_bytes()), None),
            Ok(ApprovalUpdate::Upsert(_))
        ));
        assert_eq!(
            decode_topic_record(Some(b"apr-2"), Some(GOOD.as_bytes()), None),
            Err(RecordError::KeyMismatch)
        );
        let signer = Signer::from_seed([1; 32]);
        let trust = TrustedKeys::new([signer.public_key()]);
        let unsigned =
            decode_topic_record(Some(b"apr-1"), Some(GOOD.as_bytes()), Some(&trust)).unwrap_err();
        assert_eq!(unsigned.code(), "unsigned");
        let mut value: Value = serde_json::from_str(GOOD).unwrap();
        sign_record(&signer, RecordKind::Approval, &mut value).unwrap();
        let signed = serde_json::to_vec(&value).unwrap();
        assert!(decode_topic_record(Some(b"apr-1"), Some(&signed), Some(&trust)).is_ok());
        let forged = String::from_utf8(signed)
            .unwrap()
            .replace("\"delete\"", "\"*\"");
        let refused =
            decode_topic_record(Some(b"apr-1"), Some(forged.as_bytes()), Some(&trust)).unwrap_err();
        assert_eq!(refused.code(), "bad_signature");
    }
}
