//! JSON Schemas generated from the Rust types (the source of truth), and the drift check
//! that keeps `schemas/*.schema.json` honest.

use std::path::{Path, PathBuf};

use crate::approvals::AgentApprovalV1;
use crate::error::{Error, Result};
use crate::identity::AgentRecordV1;
use crate::model::{AgentEventV1, Alert, Command};

/// `(file name, pretty JSON)` for every published schema.
pub fn generate() -> Vec<(&'static str, String)> {
    let render = |schema: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    };
    vec![
        (
            "agent-event.v1.schema.json",
            render(schemars::schema_for!(AgentEventV1)),
        ),
        ("alert.v1.schema.json", render(schemars::schema_for!(Alert))),
        (
            "command.v1.schema.json",
            render(schemars::schema_for!(Command)),
        ),
        (
            "agent-record.v1.schema.json",
            render(schemars::schema_for!(AgentRecordV1)),
        ),
        (
            "agent-approval.v1.schema.json",
            render(schemars::schema_for!(AgentApprovalV1)),
        ),
    ]
}

/// Writes every schema into `dir`, returning the paths written.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    generate()
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            Ok(path)
        })
        .collect()
}

/// Fails with [`Error::SchemaDrift`] naming every file in `dir` that is missing or
/// differs from what the types generate.
pub fn check(dir: &Path) -> Result<()> {
    let drifted: Vec<String> = generate()
        .into_iter()
        .filter(|(name, text)| std::fs::read_to_string(dir.join(name)).ok().as_ref() != Some(text))
        .map(|(name, _)| name.to_owned())
        .collect();
    if drifted.is_empty() {
        Ok(())
    } else {
        Err(Error::SchemaDrift(drifted))
    }
}
