//! The one explicit list of detector kinds, and the per-agent state each of them keeps.
//!
//! Adding a kind: write `kinds/<name>.rs` with its `Params`, `State` and detector, add
//! its state to [`KindState`] and its [`KindSpec`] to [`KINDS`]. Nothing else changes.

use serde::{Deserialize, Serialize};

use super::kinds::{
    credential_misuse, denied_burst, high_risk_action, new_system, off_hours, rate,
    scope_violation, unregistered_agent, volume,
};
use super::Detector;

/// How a kind is built from an instance file.
pub struct KindSpec {
    /// The `kind = "..."` name.
    pub name: &'static str,
    /// Builds a detector from the instance file's full text (the kind reads its own
    /// `[params]` table, so errors point at the right line).
    pub build: fn(&str) -> Result<Box<dyn Detector>, toml::de::Error>,
}

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

/// Per-agent state of one detector instance, one variant per kind.
///
/// An enum rather than a boxed trait object keeps agent state in one allocation and
/// serializable with the rest of the agent record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KindState {
    /// See [`new_system`].
    NewSystem(new_system::State),
    /// See [`volume`].
    Volume(volume::State),
    /// See [`rate`].
    Rate(rate::State),
    /// Kinds that keep nothing per agent (policy checks, and `off_hours`, which reads
    /// the shared baseline).
    Stateless,
    /// See [`denied_burst`].
    DeniedBurst(denied_burst::State),
}

/// Typed access to one variant of [`KindState`].
///
/// If a slot holds another kind's state (an instance id was reused for a different kind
/// after a configuration change), the slot is reset to a fresh state of the right kind:
/// the old numbers mean nothing to the new detector.
pub trait KindStateOf: Default + Sized {
    /// Wraps a state.
    fn wrap(self) -> KindState;
    /// Unwraps, if `state` is this kind's.
    fn project(state: &mut KindState) -> Option<&mut Self>;
    /// The typed state, resetting the slot if it held another kind's state.
    fn of(state: &mut KindState) -> &mut Self {
        if Self::project(state).is_none() {
            *state = Self::default().wrap();
        }
        match Self::project(state) {
            Some(typed) => typed,
            None => unreachable!("the slot was just reset to this kind"),
        }
    }
}

macro_rules! kind_state_of {
    ($variant:ident, $state:ty) => {
        impl KindStateOf for $state {
            fn wrap(self) -> KindState {
                KindState::$variant(self)
            }
            fn project(state: &mut KindState) -> Option<&mut Self> {
                match state {
                    KindState::$variant(typed) => Some(typed),
                    _ => None,
                }
            }
        }
    };
}

kind_state_of!(NewSystem, new_system::State);
kind_state_of!(Volume, volume::State);
kind_state_of!(Rate, rate::State);
kind_state_of!(DeniedBurst, denied_burst::State);

/// Parses the `[params]` table of an instance file into a kind's typed parameters.
pub fn parse_params<P: serde::de::DeserializeOwned + Default>(
    text: &str,
) -> Result<P, toml::de::Error> {
    #[derive(Deserialize)]
    struct Doc<P> {
        #[serde(default)]
        params: Option<P>,
    }
    let doc: Doc<P> = toml::from_str(text)?;
    Ok(doc.params.unwrap_or_default())
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

    #[test]
    fn a_slot_of_another_kind_is_reset() {
        let mut state = KindState::Rate(rate::State::default());
        let _ = volume::State::of(&mut state);
        assert!(matches!(state, KindState::Volume(_)));
    }
}
