//! Asking the CPU for an agent's state a few events before the engine needs it.
//!
//! An agent's state is a chain of heap blocks: the cache's bucket points to the agent's
//! record, which points to its detector slots and its baseline tables, whose slots
//! point to each detector's own state. On a fleet whose states do not fit in the
//! processor's caches (ten thousand agents are about 50 MB), every link is a miss that
//! the engine waits for, one after the other. Reading the next events' agents link by
//! link, a few events ahead (see [`crate::state::AgentCache::warm`]), turns those waits
//! into memory reads that overlap the work on the events in between.

use super::AgentState;
use crate::detect::KindState;
use crate::prefetch::lines;

/// Which link of an agent's state to ask for (each needs the one before it in cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warm {
    /// The agent's record.
    Record,
    /// Its detector slots and baseline tables.
    Parts,
    /// Each detector's own state.
    Kinds,
    /// What those states keep on the heap.
    Deep,
}

impl AgentState {
    /// Asks for the link `stage` of this state (see [`Warm`]).
    pub(super) fn warm(&self, stage: Warm) {
        match stage {
            Warm::Record => lines(self),
            Warm::Parts => {
                lines(self.slots.as_slice());
                self.baseline.systems.warm();
                self.baseline.actions.warm();
            }
            Warm::Kinds => {
                for slot in &self.slots {
                    match &slot.state {
                        KindState::Rate(state) => lines(&**state),
                        KindState::Volume(state) => lines(&**state),
                        KindState::DeniedBurst(state) => lines(&**state),
                        _ => {}
                    }
                }
            }
            Warm::Deep => {
                for slot in &self.slots {
                    if let KindState::Volume(state) = &slot.state {
                        state.systems.warm();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detector;

    #[test]
    fn warming_reads_a_state_and_changes_nothing() {
        let mut state = AgentState::default();
        for (i, system) in ["crm", "mail", "s3://exports"].iter().enumerate() {
            state.baseline.systems.record(system, i as i64, 64);
            state.baseline.actions.record("read", i as i64, 64);
        }
        let kinds = [
            crate::detect::kinds::rate::Rate::new(Default::default()).new_state(),
            crate::detect::kinds::volume::Volume::new(Default::default()).new_state(),
        ];
        for (key, kind) in kinds.into_iter().enumerate() {
            crate::state::DetectorSlot::insert(&mut state.slots, key as u32, kind, key);
        }
        let before = state.clone();
        for stage in [Warm::Record, Warm::Parts, Warm::Kinds, Warm::Deep] {
            state.warm(stage);
        }
        assert_eq!(state, before);
        // Blocks larger than the cap and empty ones are asked for without reading past them.
        lines(&[0u8; 4 * crate::prefetch::MAX_BYTES][..]);
        lines::<[u64]>(&[]);
    }
}
