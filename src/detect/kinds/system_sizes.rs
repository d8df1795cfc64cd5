//! How an agent's transfer sizes depend on the system it talks to.
//!
//! An agent's sizes are a mixture over what it does where: a build agent pulls
//! megabytes from `artifactory` and sends kilobytes to `github`; a read of a CRM record
//! is smaller than an export of it. Its work comes in sessions that
//! focus on one or two systems, so a session on the heavy system is a run of large
//! transfers by the agent-wide measure, each perfectly ordinary for that system. A
//! sequential test of sizes against the agent-wide distribution reads such a run as a
//! sustained shift. Testing each transfer *relative to the typical size of its action
//! on its system* removes the part of the variation that this choice explains, so what is
//! left (the residual) is close to independent from one transfer to the next, which is
//! what the tests' false-alarm arithmetic assumes.

use serde::{Deserialize, Serialize};

/// Actions on systems whose typical size is kept per agent. An agent moves data in a
/// dozen or so (action, system) pairs; measured on independent fleets, sixteen cover
/// nine in ten of a busy agent's transfers, and one beyond them is judged by the
/// agent-wide typical size.
const CAP: usize = 16;

/// Pseudo-transfers of the agent-wide typical size that a system's own mean is shrunk
/// towards: a system's typical size counts as much as the agent's after this many of
/// its transfers (a system seen twice has not shown what it is typical of).
const PRIOR_TRANSFERS: f64 = 10.0;

/// Resolution of a stored mean: 1/2048 of a unit of `ln(1 + bytes)` (0.05% of a size),
/// so that a mean fits two bytes up to `ln(1 + bytes) = 32` (80 TB per transfer).
const UNITS: f64 = 2048.0;

/// One action on one system: its running mean of `ln(1 + bytes)`. Stored as five
/// fixed bytes (varints would take up to seven), as sixteen are kept for every agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[u8; 5]", into = "[u8; 5]")]
struct SystemMean {
    /// Hash of the action and system (two among an agent's sixteen busiest collide
    /// once in about 550 agents, and that costs only precision).
    key: u16,
    /// Transfers folded in, saturating at 255: the memory of the mean, so that it
    /// follows a system whose sizes drift.
    n: u8,
    /// Mean `ln(1 + bytes)` in [`UNITS`].
    mean: u16,
}

impl From<SystemMean> for [u8; 5] {
    fn from(entry: SystemMean) -> Self {
        let [key_low, key_high] = entry.key.to_le_bytes();
        let [mean_low, mean_high] = entry.mean.to_le_bytes();
        [key_low, key_high, entry.n, mean_low, mean_high]
    }
}

impl From<[u8; 5]> for SystemMean {
    fn from([key_low, key_high, n, mean_low, mean_high]: [u8; 5]) -> Self {
        SystemMean {
            key: u16::from_le_bytes([key_low, key_high]),
            n,
            mean: u16::from_le_bytes([mean_low, mean_high]),
        }
    }
}

impl SystemMean {
    fn mean(&self) -> f64 {
        f64::from(self.mean) / UNITS
    }

    fn set_mean(&mut self, mean: f64) {
        self.mean = (mean * UNITS).round().clamp(0.0, f64::from(u16::MAX)) as u16;
    }
}

/// Per-system typical transfer sizes of one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSizes {
    entries: Vec<SystemMean>,
}

/// The key of an action on a system (FNV-1a, folded to 16 bits).
pub fn system_key(action: &str, system: &str) -> u16 {
    let fold = |hash: u32, byte: u8| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    let hash = action.bytes().fold(0x811c_9dc5_u32, fold);
    let hash = system.bytes().fold(fold(hash, 0), fold);
    ((hash >> 16) ^ hash) as u16
}

impl SystemSizes {
    /// How far the typical `ln(1 + bytes)` of the pair `key` lies above the agent-wide
    /// `agent_mean`, shrunk towards zero for a pair with few transfers.
    ///
    /// Shrinking by [`PRIOR_TRANSFERS`] rather than by an empirical-Bayes weight from
    /// the spread between pairs is deliberate: trusting a pair's mean after one or two
    /// transfers (what the between-pair spread of most agents implies) made `volume`
    /// revoke a healthy pipeline agent on an independent fleet, whose pair of small
    /// warehouse calls is sometimes a bulk load.
    pub fn offset(&self, key: u16, agent_mean: f64) -> f64 {
        self.entries.iter().find(|e| e.key == key).map_or(0.0, |e| {
            let n = f64::from(e.n);
            n / (n + PRIOR_TRANSFERS) * (e.mean() - agent_mean)
        })
    }

    /// Folds one ordinary transfer of `ln_bytes` to the system `key` into its mean,
    /// making room by forgetting the least used system if needed.
    pub fn learn(&mut self, key: u16, ln_bytes: f64) {
        let index = match self.entries.iter().position(|e| e.key == key) {
            Some(index) => index,
            None if self.entries.len() < CAP => {
                self.entries.push(SystemMean {
                    key,
                    ..SystemMean::default()
                });
                self.entries.len() - 1
            }
            None => {
                let Some(index) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].n) else {
                    return;
                };
                self.entries[index] = SystemMean {
                    key,
                    ..SystemMean::default()
                };
                index
            }
        };
        let entry = &mut self.entries[index];
        entry.n = entry.n.saturating_add(1);
        let mean = entry.mean();
        entry.set_mean(mean + (ln_bytes - mean) / f64::from(entry.n));
    }

    /// How many actions on systems have a typical size of their own.
    pub fn known(&self) -> usize {
        self.entries.len()
    }

    /// Moves every system's typical size by `shift` (a promoted change of sizes).
    pub fn shift(&mut self, shift: f64) {
        for entry in &mut self.entries {
            entry.set_mean(entry.mean() + shift);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_known_pair_is_judged_by_its_own_typical_size() {
        let mut sizes = SystemSizes::default();
        let heavy = system_key("read", "artifactory");
        for _ in 0..200 {
            sizes.learn(heavy, 14.0);
        }
        let offset = sizes.offset(heavy, 10.0);
        assert!((offset - 4.0 * 200.0 / 210.0).abs() < 1e-3, "{offset}");
        assert_eq!(sizes.offset(system_key("read", "github"), 10.0), 0.0);
    }

    #[test]
    fn a_pair_seen_twice_barely_moves_its_typical_size() {
        let mut sizes = SystemSizes::default();
        let key = system_key("write", "s3://exports");
        sizes.learn(key, 20.0);
        sizes.learn(key, 20.0);
        assert!(sizes.offset(key, 10.0) < 10.0 * 2.0 / 12.0 + 1e-3);
    }

    #[test]
    fn an_entry_is_stored_in_five_bytes_and_read_back_exactly() {
        let mut sizes = SystemSizes::default();
        sizes.learn(system_key("read", "crm"), 10.5);
        sizes.learn(system_key("write", "crm"), 7.25);
        let bytes = postcard::to_stdvec(&sizes).unwrap();
        assert_eq!(bytes.len(), 1 + 2 * 5);
        assert_eq!(postcard::from_bytes::<SystemSizes>(&bytes).unwrap(), sizes);
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_busy_systems() {
        let mut sizes = SystemSizes::default();
        for _ in 0..50 {
            sizes.learn(system_key("read", "busy"), 12.0);
        }
        for i in 0..100 {
            sizes.learn(system_key("read", &format!("once-{i}")), 5.0);
        }
        assert_eq!(sizes.entries.len(), CAP);
        assert!(sizes.offset(system_key("read", "busy"), 10.0) > 1.5);
    }
}
