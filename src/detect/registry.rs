//! The one explicit list of detector kinds, and the per-agent state each of them keeps.
//!
//! Adding a kind: write `kinds/<name>.rs` with its `Params`, `State` and detector, add
//! its state to [`KindState`] and its [`KindSpec`] to [`KINDS`]. Nothing else changes.

use serde::{Deserialize, Serialize};

use super::kinds::{
    credential_misuse, denied_burst, high_risk_action, new_system, off_hours, rate,
    scope_violation, unregistered_agent, volume,
};
use super::{Aspect, Detector, FleetScope};

/// How a kind is built from an instance file.
pub struct KindSpec {
    /// The `kind = "..."` name.
    pub name: &'static str,
    /// The part of the shared baseline its findings keep out until they persist.
    pub guards: Aspect,
    /// The fleet-wide pattern its findings can belong to, if any.
    pub fleet: Option<FleetScope>,
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
///
/// Variants are only ever appended (postcard stores the variant's index): a kind whose
/// state changes shape gets a new variant and its old one is kept, renamed `Retired*`,
/// so that stored agents still decode; such a slot is reset on first use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KindState {
    /// `new_system` state of state format 2 and earlier.
    RetiredNewSystem(retired::NewSystemV2),
    /// `volume` state of state format 2 and earlier.
    RetiredVolume(retired::VolumeV2),
    /// `rate` state of state format 2 and earlier.
    RetiredRate(retired::RateV2),
    /// Kinds that keep nothing per agent (policy checks, and `off_hours`, which reads
    /// the shared baseline).
    Stateless,
    /// See [`denied_burst`].
    DeniedBurst(denied_burst::State),
    /// See [`volume`].
    Volume(Box<volume::State>),
    /// See [`rate`].
    Rate(Box<rate::State>),
    /// See [`new_system`].
    NewSystem(new_system::State),
    /// See [`high_risk_action`]: approval uses and events waiting for an approval.
    /// (Agents stored before it existed hold `Stateless` here, which is reset to an
    /// empty ledger on first use: nothing was counted before verification existed.)
    HighRiskAction(Box<crate::approvals::Ledger>),
}

impl KindState {
    /// True if the state holds events waiting to be decided later (see
    /// [`crate::approvals`]): the engine keeps such agents in a small index so that it
    /// can release them when their approval arrives or their wait ends.
    pub fn holds_events(&self) -> bool {
        matches!(self, KindState::HighRiskAction(ledger) if ledger.is_holding())
    }
}

/// State shapes that older builds stored, kept only so their records still decode.
pub mod retired {
    use serde::{Deserialize, Serialize};

    use crate::detect::kinds::TumblingWindow;
    use crate::stats::EwStats;

    /// `new_system` before state format 3.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub struct NewSystemV2 {
        /// Decayed novel events.
        pub novel: f64,
        /// Decayed events.
        pub exposure: f64,
        /// Time the counts are decayed to.
        pub at_ms: i64,
    }

    /// `volume` before state format 3.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub struct VolumeV2 {
        /// Per-transfer log sizes.
        pub transfers: EwStats,
        /// Per-window log totals.
        pub windows: EwStats,
        /// The open window.
        pub window: TumblingWindow,
    }

    /// `rate` before state format 3.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub struct RateV2 {
        /// Calls per active window.
        pub windows: EwStats,
        /// The open window.
        pub window: TumblingWindow,
    }
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
kind_state_of!(DeniedBurst, denied_burst::State);

/// Boxed states: the larger kinds live behind one pointer so that a slot stays small
/// for agents that never use them.
macro_rules! boxed_kind_state_of {
    ($variant:ident, $state:ty) => {
        impl KindStateOf for $state {
            fn wrap(self) -> KindState {
                KindState::$variant(Box::new(self))
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

boxed_kind_state_of!(Volume, volume::State);
boxed_kind_state_of!(Rate, rate::State);
boxed_kind_state_of!(HighRiskAction, crate::approvals::Ledger);

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
        let mut state = rate::State::default().wrap();
        let _ = volume::State::of(&mut state);
        assert!(matches!(state, KindState::Volume(_)));
    }

    #[test]
    fn a_retired_state_decodes_and_is_reset_on_use() {
        let old = KindState::RetiredRate(retired::RateV2 {
            windows: crate::stats::EwStats::default(),
            window: crate::detect::kinds::TumblingWindow::default(),
        });
        let bytes = postcard::to_stdvec(&old).unwrap();
        let mut state: KindState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(state, old);
        assert_eq!(*rate::State::of(&mut state), rate::State::default());
    }
}
