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
