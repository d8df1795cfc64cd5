//! The canonical encoding that command signatures cover.
//!
//! ```text
//! "agentwatch.command.v1\n" ++ JSON of the command without "signature",
//!                              object keys sorted by code point, no whitespace
//! ```
//!
//! Sorted-key, whitespace-free JSON is what most languages' standard JSON writers
//! produce with one flag (Python: `json.dumps(c, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)`), so an enforcer needs no special library. The prefix keeps a
//! signature over a command from ever verifying as a signature over anything else.
//! Keys are sorted here explicitly rather than relying on the JSON map's ordering, which
//! a cargo feature elsewhere in the build could change.

use serde_json::Value;

/// Domain-separation prefix of every signed message.
pub const DOMAIN: &[u8] = b"agentwatch.command.v1\n";

/// The bytes a signature covers for `command` (a JSON object; its `signature` field, if
/// any, is left out).
pub fn signed_bytes(command: &Value) -> Vec<u8> {
    signed_bytes_in(DOMAIN, command)
}

/// The bytes a signature covers for `value` under another contract's `domain` prefix
/// (signed approval and registry records, see [`super::record`]): the same canonical
/// JSON, so one verifier implementation serves every signed message, while the prefix
/// keeps a signature made for one contract from verifying as another.
pub fn signed_bytes_in(domain: &[u8], value: &Value) -> Vec<u8> {
    let mut out = domain.to_vec();
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "signature")
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            write_object(&entries, &mut out);
        }
        other => write_value(other, &mut out),
    }
    out
}

fn write_object(entries: &[(&String, &Value)], out: &mut Vec<u8>) {
    out.push(b'{');
    for (index, (key, value)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            write_object(&entries, out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => write_string(text, out),
        // Numbers, booleans and null: serde_json's compact form (commands carry only
        // integers, whose form every JSON writer agrees on).
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's escaping: `"`, `\` and control characters; everything else raw UTF-8
    // (the same as Python's json.dumps with ensure_ascii=False).
    let quoted = Value::String(text.to_owned()).to_string();
    out.extend_from_slice(quoted.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_the_signature_left_out() {
        let value: Value = serde_json::from_str(
            r#"{"b": 1, "a": {"z": "x\ny", "c": [2, "é"]}, "signature": {"value": "s"}}"#,
        )
        .unwrap();
        let bytes = signed_bytes(&value);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "agentwatch.command.v1\n{\"a\":{\"c\":[2,\"é\"],\"z\":\"x\\ny\"},\"b\":1}"
        );
    }
}
