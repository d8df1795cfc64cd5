//! The one explicit list of detector kinds this build knows.
//!
//! Adding a kind: write `kinds/<name>.rs` with its `Params`, `State`, detector and
//! `SPEC`; give its per-agent state a variant of [`KindState`](super::KindState) in
//! `kinds/mod.rs` (if it keeps any); add its `SPEC` to [`KINDS`] here. Nothing else
//! changes. The catalogue depends on the kinds and no kind depends on the catalogue.

use super::kinds::{
    credential_misuse, denied_burst, high_risk_action, new_system, off_hours, rate,
    scope_violation, unregistered_agent, volume,
};
use super::KindSpec;

/// Every kind this build knows.
pub const KINDS: &[KindSpec] = &[
    new_system::SPEC,
    volume::SPEC,
    rate::SPEC,
    off_hours::SPEC,
    denied_burst::SPEC,
    unregistered_agent::SPEC,
    scope_violation::SPEC,
    high_risk_action::SPEC,
    credential_misuse::SPEC,
];

/// Looks a kind up by name.
pub fn find(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
    }
}
