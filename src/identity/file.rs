//! Registry files: TOML (`[[agent]]` tables) or JSON (an array of records,
//! `{"agents": [...]}`, or one record), chosen by extension. Every problem is reported at once, each
//! with its file and line, and a file with any problem is refused as a whole: a registry
//! that silently dropped one agent would turn its owner's next alert into a mystery.

use std::path::Path;

use serde::Deserialize;

use super::{AgentRecord, AgentRecordV1, Registry};
use crate::diagnostics::{toml_problem, Diagnostics};
use crate::error::{Error, Result};

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

/// Loads and validates a registry file.
pub fn load_file(path: &Path) -> Result<Registry> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading registry {}", path.display()), e))?;
    let json = path.extension().is_some_and(|ext| ext == "json");
    let records = parse_records(&path.display().to_string(), &text, json)?;
    Ok(Registry::new(records))
}

/// Parses and validates registry text; `file` names it in problems.
pub fn parse_records(file: &str, text: &str, json: bool) -> Result<Vec<AgentRecord>> {
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
    let mut found = Diagnostics::new(file, text);
    let mut records = Vec::with_capacity(specs.len());
    let mut seen = std::collections::HashMap::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let line = starts.get(index).copied().unwrap_or(1);
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
        Ok(records)
    } else {
        Err(Error::Registry(found.into_problems()))
    }
}

/// 1-based lines on which each record starts, found by the marker that opens one.
fn record_lines(text: &str, marker: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with(marker))
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
}
