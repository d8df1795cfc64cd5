//! Registry files: TOML (`[[agent]]` tables) or JSON (an array of records,
//! `{"agents": [...]}`, or one record), chosen by extension. Every problem is reported at once, each
//! with its file and line, and a file with any problem is refused as a whole: a registry
//! that silently dropped one agent would turn its owner's next alert into a mystery.
//!
//! Signatures are the exception. With trusted keys (`[registry] trusted_keys`), a record
//! that is unsigned or badly signed is refused on its own and reported with its line
//! ([`RefusedRecord`]), as on the registry topic: whoever can write the file could
//! otherwise register a rogue agent or widen a boundary, and refusing the whole file
//! would let them take every other agent's record away with one bad line.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{AgentRecord, AgentRecordV1, Registry};
use crate::diagnostics::{toml_problem, Diagnostics};
use crate::error::{Error, Result};
use crate::signing::{RecordKind, Rejection, TrustedKeys};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    agent: Vec<AgentRecordV1>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonFile {
    List(Vec<AgentRecordV1>),
    Wrapped { agents: Vec<AgentRecordV1> },
    One(Box<AgentRecordV1>),
}

#[derive(serde::Serialize)]
struct TomlOut<'a> {
    agent: &'a [AgentRecordV1],
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    agents: &'a [AgentRecordV1],
}

/// Writes records as a registry file: JSON for a `.json` path, TOML otherwise.
pub fn write_file(path: &Path, records: &[AgentRecordV1]) -> Result<()> {
    let json = path.extension().is_some_and(|ext| ext == "json");
    let text = if json {
        serde_json::to_string_pretty(&JsonOut { agents: records })
            .map(|t| t + "\n")
            .map_err(|e| e.to_string())
    } else {
        toml::to_string(&TomlOut { agent: records }).map_err(|e| e.to_string())
    }
    .map_err(|detail| Error::InvalidInput {
        context: format!("encoding registry {}", path.display()),
        detail,
    })?;
    std::fs::write(path, text)
        .map_err(|e| Error::io(format!("writing registry {}", path.display()), e))
}

/// A record of a registry file refused for its signature. Its content is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    /// The 1-based line on which the record starts.
    pub line: usize,
    /// Why its signature does not satisfy the trusted keys.
    pub rejection: Rejection,
}

/// A registry file's usable records, and those refused for their signature.
#[derive(Debug, Clone, Default)]
pub struct SignedRecords {
    /// The records that take effect, in file order.
    pub records: Vec<AgentRecord>,
    /// The records refused for their signature.
    pub refused: Vec<RefusedRecord>,
}

/// Loads and validates a registry file.
pub fn load_file(path: &Path) -> Result<Registry> {
    Ok(Registry::new(load_signed_file(path, None)?.records))
}

/// Loads and validates a registry file; with `trust` holding keys, only records signed
/// by one of them take effect (see [`parse_signed_records`]).
pub fn load_signed_file(path: &Path, trust: Option<&TrustedKeys>) -> Result<SignedRecords> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading registry {}", path.display()), e))?;
    let json = path.extension().is_some_and(|ext| ext == "json");
    parse_signed_records(&path.display().to_string(), &text, json, trust)
}

/// Parses and validates registry text; `file` names it in problems.
pub fn parse_records(file: &str, text: &str, json: bool) -> Result<Vec<AgentRecord>> {
    parse_signed_records(file, text, json, None).map(|found| found.records)
}

/// Parses and validates registry text. With `trust` holding keys, each record's
/// signature is checked on the record as written (a TOML table as its JSON value),
/// before anything else: a refused record is set aside with its line, and takes no
/// part in the other checks (not even as a duplicate).
pub fn parse_signed_records(
    file: &str,
    text: &str,
    json: bool,
    trust: Option<&TrustedKeys>,
) -> Result<SignedRecords> {
    let trust = trust.filter(|t| !t.is_empty());
    let (specs, starts) = if json {
        let specs = match serde_json::from_str::<JsonFile>(text) {
            Ok(JsonFile::List(specs)) | Ok(JsonFile::Wrapped { agents: specs }) => specs,
            Ok(JsonFile::One(spec)) => vec![*spec],
            Err(e) => return Err(json_problem(file, text, &e)),
        };
        (specs, record_lines(text, "\"agent_id\""))
    } else {
        let parsed: TomlFile = toml::from_str(text)
            .map_err(|e| Error::Registry(vec![toml_problem(file, text, &e)]))?;
        (parsed.agent, record_lines(text, "[[agent]]"))
    };
    let raw = match trust {
        Some(_) => raw_records(text, json),
        None => Vec::new(),
    };
    let mut found = Diagnostics::new(file, text);
    let mut signed = SignedRecords::default();
    let records = &mut signed.records;
    let mut seen = std::collections::HashMap::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let line = starts.get(index).copied().unwrap_or(1);
        if let Some(trust) = trust {
            let verdict = raw.get(index).map_or(
                Err(Rejection::Malformed("record not readable as JSON".into())),
                |value| trust.verify(RecordKind::AgentRecord, value),
            );
            if let Err(rejection) = verdict {
                signed.refused.push(RefusedRecord { line, rejection });
                continue;
            }
        }
        if let Some(first) = seen.insert(spec.agent_id.clone(), line) {
            found.at_line(
                line,
                format_args!(
                    "agent {:?} is already declared at line {first}",
                    spec.agent_id
                ),
            );
            continue;
        }
        match AgentRecord::compile(spec, true) {
            Ok(record) => records.push(record),
            Err(problems) => problems.iter().for_each(|p| found.at_line(line, p)),
        }
    }
    if found.is_empty() {
        Ok(signed)
    } else {
        Err(Error::Registry(found.into_problems()))
    }
}

/// The records of a registry file as JSON values, in file order, for their signatures
/// (empty if the text is not shaped as a registry; its records then fail to parse).
fn raw_records(text: &str, json: bool) -> Vec<Value> {
    if json {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(list)) => list,
            Ok(Value::Object(mut map)) if map.contains_key("agents") => {
                match map.remove("agents") {
                    Some(Value::Array(list)) => list,
                    _ => Vec::new(),
                }
            }
            Ok(record @ Value::Object(_)) => vec![record],
            _ => Vec::new(),
        };
    }
    let table = match toml::from_str::<toml::Table>(text) {
        Ok(table) => table,
        Err(_) => return Vec::new(),
    };
    match table.get("agent") {
        Some(toml::Value::Array(list)) => list
            .iter()
            .map(|record| serde_json::to_value(record).unwrap_or(Value::Null))
            .collect(),
        _ => Vec::new(),
    }
}

/// 1-based lines on which each record starts, found by the marker that opens one: at
/// the start of a TOML line, anywhere in a JSON line (a record written on one line, as
/// `sign-record` writes it, starts with `{"agent_id"`; an escaped quote in a value
/// cannot match).
fn record_lines(text: &str, marker: &str) -> Vec<usize> {
    let json = marker.starts_with('"');
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            if json {
                line.contains(marker)
            } else {
                line.trim_start().starts_with(marker)
            }
        })
        .map(|(index, _)| index + 1)
        .collect()
}

fn json_problem(file: &str, text: &str, error: &serde_json::Error) -> Error {
    let detail = if error.to_string().contains("did not match any variant") {
        // The untagged wrapper hides the real error; parse as the shape the text has to
        // find it.
        let wrapped = serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|v| v.get("agents").is_some());
        let inner = if !text.trim_start().starts_with('{') {
            serde_json::from_str::<Vec<AgentRecordV1>>(text).err()
        } else if wrapped {
            serde_json::from_str::<WrappedOnly>(text).err()
        } else {
            serde_json::from_str::<AgentRecordV1>(text).err()
        };
        match inner {
            Some(inner) => inner,
            None => return Error::Registry(vec![format!("{file}:1: {error}")]),
        }
    } else {
        return Error::Registry(vec![format!("{file}:{}: {error}", error.line())]);
    };
    Error::Registry(vec![format!("{file}:{}: {detail}", detail.line())])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct WrappedOnly {
    agents: Vec<AgentRecordV1>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[agent]]
agent_id = "billing-bot"
owner = "ana@example.com"
tier = "restricted"
allowed_systems = ["billing", "crm"]
credentials = [{ id = "k1", issued_at = "2026-01-01T00:00:00Z", expires_at = "2026-02-01T00:00:00Z" }]

[[agent]]
agent_id = "ghost"
owner = ""

[[agent]]
agent_id = "billing-bot"
owner = "bo@example.com"
"#;

    #[test]
    fn toml_problems_name_the_line_of_each_record() {
        let err = parse_records("r.toml", TOML, false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("r.toml:9: agent \"ghost\" has no owner"),
            "{text}"
        );
        assert!(
            text.contains("r.toml:13: agent \"billing-bot\" is already declared at line 2"),
            "{text}"
        );
        let good: String = TOML.lines().take(8).collect::<Vec<_>>().join("\n");
        let records = parse_records("r.toml", &good, false).unwrap();
        assert_eq!(records[0].owner(), Some("ana@example.com"));
    }

    #[test]
    fn time_zones_are_checked_with_the_line_of_their_record() {
        let text = "\
[[agent]]
agent_id = \"berlin\"
owner = \"o\"
working_hours = { days = [\"mon\"], start = \"09:00\", end = \"17:00\", timezone = \"Europe/Berlin\" }

[[agent]]
agent_id = \"nowhere\"
owner = \"o\"
working_hours = { days = [\"mon\"], start = \"09:00\", end = \"17:00\", timezone = \"Mars/Olympus\" }

[[agent]]
agent_id = \"torn\"
owner = \"o\"
working_hours = { days = [\"mon\"], start = \"09:00\", end = \"17:00\", timezone = \"UTC\", utc_offset = \"+01:00\" }
";
        let err = parse_records("r.toml", text, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r.toml:6: working_hours timezone \"Mars/Olympus\" is not an IANA"),
            "{err}"
        );
        assert!(
            err.contains("r.toml:11: working_hours gives both utc_offset and timezone"),
            "{err}"
        );
        assert!(err.starts_with("2 registry problem(s)"), "{err}");
        let good: String = text.lines().take(4).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_records("r.toml", &good, false).unwrap().len(), 1);
    }

    #[test]
    fn unknown_keys_and_json_errors_have_lines() {
        let typo = "[[agent]]\nagent_id = \"a\"\nowner = \"o\"\nalowed_systems = []\n";
        let err = parse_records("r.toml", typo, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r.toml:4:") && err.contains("alowed_systems"),
            "{err}"
        );
        let json =
            "[\n {\"agent_id\": \"a\", \"owner\": \"o\"},\n {\"agent_id\": \"b\", \"owner\": 7}\n]";
        let err = parse_records("r.json", json, true).unwrap_err().to_string();
        assert!(err.contains("r.json:3:"), "{err}");
        let wrapped = "{\"agents\": [{\"agent_id\": \"a\", \"owner\": \"o\"}]}";
        assert_eq!(parse_records("r.json", wrapped, true).unwrap().len(), 1);
        let one = "{\"agent_id\": \"a\", \"owner\": \"o\"}";
        assert_eq!(parse_records("r.json", one, true).unwrap().len(), 1);
        let typo = "{\n\"agent_id\": \"a\",\n\"ownr\": \"o\"}";
        let err = parse_records("r.json", typo, true).unwrap_err().to_string();
        assert!(err.contains("r.json:3:") && err.contains("ownr"), "{err}");
    }

    /// With trusted keys, an unsigned, a tampered and a foreign-signed record are each
    /// refused with their line and code, and the signed ones load, in JSON and TOML
    /// (a TOML table is checked as its JSON value, so `sign-record` output fits it).
    #[test]
    fn with_trusted_keys_only_signed_file_records_take_effect() {
        use crate::signing::{sign_record, Signer};
        let signer = Signer::from_seed([7; 32]);
        let trust = TrustedKeys::new([signer.public_key()]);
        let signed = |text: &str, by: &Signer| {
            let mut value: Value = serde_json::from_str(text).unwrap();
            sign_record(by, RecordKind::AgentRecord, &mut value).unwrap();
            value
        };
        let good = signed(
            r#"{"agent_id":"a","owner":"ana@example.com","allowed_systems":["crm"]}"#,
            &signer,
        );
        let mut tampered = signed(
            r#"{"agent_id":"b","owner":"bo@example.com","allowed_systems":["crm"]}"#,
            &signer,
        );
        tampered["allowed_systems"] = serde_json::json!(["*"]);
        let foreign = signed(
            r#"{"agent_id":"c","owner":"cy@example.com"}"#,
            &Signer::from_seed([8; 32]),
        );
        let unsigned: Value =
            serde_json::from_str(r#"{"agent_id":"d","owner":"di@example.com"}"#).unwrap();
        let lines: Vec<String> = [&good, &tampered, &foreign, &unsigned]
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect();
        let json = format!("[\n{}\n]", lines.join(",\n"));
        let found = parse_signed_records("r.json", &json, true, Some(&trust)).unwrap();
        let ids: Vec<&str> = found
            .records
            .iter()
            .map(|r| r.spec.agent_id.as_str())
            .collect();
        assert_eq!(ids, ["a"]);
        let refused: Vec<(usize, &str)> = found
            .refused
            .iter()
            .map(|r| (r.line, r.rejection.code()))
            .collect();
        assert_eq!(
            refused,
            [(3, "bad_signature"), (4, "unknown_key"), (5, "unsigned")]
        );
        // Without keys nothing is checked; the same text loads whole.
        assert_eq!(
            parse_signed_records("r.json", &json, true, None)
                .unwrap()
                .records
                .len(),
            4
        );

        let toml_of =
            |value: &Value| toml::to_string(&serde_json::json!({"agent": [value]})).unwrap();
        let text = toml_of(&good) + "\n" + &toml_of(&tampered);
        let found = parse_signed_records("r.toml", &text, false, Some(&trust)).unwrap();
        assert_eq!(found.records.len(), 1);
        assert_eq!(found.records[0].spec.agent_id, "a");
        assert_eq!(found.refused.len(), 1);
        assert_eq!(found.refused[0].rejection.code(), "bad_signature");
    }
}
