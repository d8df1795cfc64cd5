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

/// Most pseudo-transfers of the agent-wide typical size that a pair's own mean is
/// shrunk towards: where the agent's pairs differ little, a pair's typical size counts
/// as much as the agent's after this many of its transfers.
const PRIOR_TRANSFERS: f64 = 10.0;

/// Fewest pseudo-transfers a pair's mean is shrunk by, however much the agent's pairs
/// differ: a pair seen twice has not shown what it is typical of.
const MIN_PRIOR_TRANSFERS: f64 = 2.0;

/// Resolution of a stored mean: 1/2048 of a unit of `ln(1 + bytes)` (0.05% of a size),
/// so that a mean fits two bytes up to `ln(1 + bytes) = 32` (80 TB per transfer).
const UNITS: f64 = 2048.0;

/// One action on one system: its running mean and spread of `ln(1 + bytes)`. Stored
/// as seven fixed bytes (varints would take up to nine), as sixteen are kept for
/// every agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[u8; 7]", into = "[u8; 7]")]
struct SystemMean {
    /// Hash of the action and system (two among an agent's sixteen busiest collide
    /// once in about 550 agents, and that costs only precision).
    key: u16,
    /// Transfers folded in, saturating at 255: the memory of the mean, so that it
    /// follows a system whose sizes drift.
    n: u8,
    /// Mean `ln(1 + bytes)` in [`UNITS`].
    mean: u16,
    /// Variance of `ln(1 + bytes)` in [`UNITS`] (up to 32: a spread of ×/÷ 290).
    var: u16,
}

impl From<SystemMean> for [u8; 7] {
    fn from(entry: SystemMean) -> Self {
        let [key_low, key_high] = entry.key.to_le_bytes();
        let [mean_low, mean_high] = entry.mean.to_le_bytes();
        let [var_low, var_high] = entry.var.to_le_bytes();
        [
            key_low, key_high, entry.n, mean_low, mean_high, var_low, var_high,
        ]
    }
}

impl From<[u8; 7]> for SystemMean {
    fn from([key_low, key_high, n, mean_low, mean_high, var_low, var_high]: [u8; 7]) -> Self {
        SystemMean {
            key: u16::from_le_bytes([key_low, key_high]),
            n,
            mean: u16::from_le_bytes([mean_low, mean_high]),
            var: u16::from_le_bytes([var_low, var_high]),
        }
    }
}

impl SystemMean {
    fn mean(&self) -> f64 {
        f64::from(self.mean) / UNITS
    }

    fn set_mean(&mut self, mean: f64) {
        self.mean = to_units(mean);
    }

    fn var(&self) -> f64 {
        f64::from(self.var) / UNITS
    }
}

fn to_units(value: f64) -> u16 {
    (value * UNITS).round().clamp(0.0, f64::from(u16::MAX)) as u16
}

/// Per-system typical transfer sizes of one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSizes {
    entries: Vec<SystemMean>,
}

/// A pair's own typical size and spread (see [`SystemSizes::own`]): what its run of
/// transfers is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairSizes {
    /// Mean `ln(1 + bytes)`.
    pub mean: f64,
    /// Standard deviation of `ln(1 + bytes)`, floored at the resolution of sizes.
    pub sd: f64,
}

/// How one pair's sizes stand against the agent's (see [`SystemSizes::relative`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relative {
    /// How far the pair's typical `ln(1 + bytes)` lies above the agent's.
    pub offset: f64,
    /// The agent's spread over the pair's.
    pub scale: f64,
}

impl Relative {
    /// A pair judged as the agent as a whole.
    const AGENT: Relative = Relative {
        offset: 0.0,
        scale: 1.0,
    };
}

/// The key of an action on a system (FNV-1a, folded to 16 bits).
pub fn system_key(action: &str, system: &str) -> u16 {
    let fold = |hash: u32, byte: u8| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    let hash = action.bytes().fold(0x811c_9dc5_u32, fold);
    let hash = system.bytes().fold(fold(hash, 0), fold);
    ((hash >> 16) ^ hash) as u16
}

impl SystemSizes {
    /// Asks the CPU for the entries' cache lines (see [`crate::state::Warm`]).
    pub fn warm(&self) {
        crate::prefetch::lines(self.entries.as_slice());
    }

    /// Where the pair `key` stands against the agent as a whole, whose residuals have
    /// mean `agent_mean` and variance `agent_var`: how far its typical `ln(1 + bytes)`
    /// lies above the agent's (the offset), and how much more (or less) a deviation
    /// from it says than the same deviation agent-wide (the scale). A pair with no
    /// entry is the agent's own: offset 0, scale 1.
    ///
    /// The offset is shrunk towards zero for a pair with few transfers, by
    /// [`SystemSizes::prior_transfers`]: an empirical-Bayes weight from the spread
    /// between pairs, never trusting a pair's mean by more than half after two
    /// transfers. (Trusting a pair's mean after one or two transfers made `volume`
    /// revoke a healthy pipeline agent on an independent fleet, whose pair of small
    /// warehouse calls is sometimes a bulk load.)
    ///
    /// The scale is the agent's spread over the pair's, both floored at `sd_floor`
    /// (the resolution of sizes), the pair's variance shrunk towards `agent_var` by
    /// the same weight. An agent's pairs differ in spread as much as in typical size: an HR
    /// agent's writes to its HR system vary ×/÷ 2 while its document reads vary ×/÷ 30.
    /// Judged by the agent-wide spread, a dozen writes in a row at ten times their
    /// usual size were each in the agent's top fifth, and an exfiltration of them on an
    /// independently generated fleet went unseen; judged by their own, each is beyond
    /// the pair's 99th percentile.
    pub fn relative(&self, key: u16, agent_mean: f64, agent_var: f64, sd_floor: f64) -> Relative {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(Relative::AGENT, |e| {
                let n = f64::from(e.n);
                let weight = n / (n + self.prior_transfers(agent_mean, agent_var));
                let pair_var = weight * e.var() + (1.0 - weight) * agent_var;
                Relative {
                    offset: weight * (e.mean() - agent_mean),
                    scale: agent_var.sqrt().max(sd_floor) / pair_var.sqrt().max(sd_floor),
                }
            })
    }

    /// Pseudo-transfers a pair's mean is shrunk by: the empirical-Bayes ratio of the
    /// spread within pairs (`agent_var`, the variance of the agent's residuals) to the
    /// spread between their means, bounded by [`MIN_PRIOR_TRANSFERS`] and
    /// [`PRIOR_TRANSFERS`]. A security agent whose Jira searches return 35 KB and whose
    /// SIEM searches return 600 KB has pairs far apart: its 21 Jira searches are what
    /// Jira searches are typical of, and shrinking them by ten pulled their typical
    /// size to 77 KB, so an exfiltration of seventeen 200 KB Jira results within
    /// minutes looked ordinary.
    fn prior_transfers(&self, agent_mean: f64, agent_var: f64) -> f64 {
        let (mut transfers, mut spread) = (0.0, 0.0);
        for entry in &self.entries {
            let n = f64::from(entry.n);
            transfers += n;
            spread += n * (entry.mean() - agent_mean).powi(2);
        }
        let between = spread / transfers.max(1.0);
        (agent_var / between.max(f64::MIN_POSITIVE)).clamp(MIN_PRIOR_TRANSFERS, PRIOR_TRANSFERS)
    }

    /// Folds one ordinary transfer of `ln_bytes` to the system `key` into its mean,
    /// making room by forgetting the least used system if needed. Returns the slot
    /// of a system forgotten so (its place now holds `key`).
    pub fn learn(&mut self, key: u16, ln_bytes: f64) -> Option<u8> {
        let mut replaced = None;
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
                let index = (0..self.entries.len()).min_by_key(|&i| self.entries[i].n)?;
                self.entries[index] = SystemMean {
                    key,
                    ..SystemMean::default()
                };
                replaced = Some(index as u8);
                index
            }
        };
        let entry = &mut self.entries[index];
        entry.n = entry.n.saturating_add(1);
        let n = f64::from(entry.n);
        let mean = entry.mean();
        let next = mean + (ln_bytes - mean) / n;
        entry.set_mean(next);
        let var = entry.var();
        entry.var = to_units(var + ((ln_bytes - mean) * (ln_bytes - next) - var) / n);
        replaced
    }

    /// The pair `key`'s own typical size and spread (unshrunk), if it has an entry:
    /// its slot in the table, the transfers behind them, and the sizes.
    pub fn own(&self, key: u16, sd_floor: f64) -> Option<(u8, u8, PairSizes)> {
        let slot = self.entries.iter().position(|e| e.key == key)?;
        let entry = &self.entries[slot];
        let sizes = PairSizes {
            mean: entry.mean(),
            sd: entry.var().sqrt().max(sd_floor),
        };
        Some((slot as u8, entry.n, sizes))
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

/// One pair as state formats 7 to 11 stored it: its mean, no spread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[u8; 5]", into = "[u8; 5]")]
struct SystemMeanV11 {
    key: u16,
    n: u8,
    mean: u16,
}

impl From<SystemMeanV11> for [u8; 5] {
    fn from(entry: SystemMeanV11) -> Self {
        let [key_low, key_high] = entry.key.to_le_bytes();
        let [mean_low, mean_high] = entry.mean.to_le_bytes();
        [key_low, key_high, entry.n, mean_low, mean_high]
    }
}

impl From<[u8; 5]> for SystemMeanV11 {
    fn from([key_low, key_high, n, mean_low, mean_high]: [u8; 5]) -> Self {
        SystemMeanV11 {
            key: u16::from_le_bytes([key_low, key_high]),
            n,
            mean: u16::from_le_bytes([mean_low, mean_high]),
        }
    }
}

/// Per-system typical sizes as state formats 7 to 11 stored them (means only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSizesV11 {
    entries: Vec<SystemMeanV11>,
}

impl SystemSizes {
    /// Carries format 11 sizes over, every pair starting with the spread `agent_var`
    /// (the agent's own, so that each pair is judged as before until its transfers
    /// show its spread).
    pub fn from_v11(old: &SystemSizesV11, agent_var: f64) -> Self {
        SystemSizes {
            entries: old
                .entries
                .iter()
                .map(|e| SystemMean {
                    key: e.key,
                    n: e.n,
                    mean: e.mean,
                    var: to_units(agent_var),
                })
                .collect(),
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
        // Far from the agent's typical size: shrunk by the fewest pseudo-transfers.
        let offset = sizes.relative(heavy, 10.0, 1.0, 0.25).offset;
        assert!((offset - 4.0 * 200.0 / 202.0).abs() < 1e-3, "{offset}");
        assert_eq!(
            sizes.relative(system_key("read", "github"), 10.0, 1.0, 0.25),
            Relative::AGENT
        );
    }

    #[test]
    fn a_pair_is_judged_in_its_own_spread_once_its_transfers_show_it() {
        let mut sizes = SystemSizes::default();
        let tight = system_key("write", "hr");
        let wide = system_key("read", "docs");
        for i in 0..200 {
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            sizes.learn(tight, 9.0 + 0.5 * sign);
            sizes.learn(wide, 10.0 + 2.0 * sign);
        }
        // The agent's spread is 1 (variance 1); the pairs' are 0.5 and 2.
        let agent_var = 1.0;
        let tight_scale = sizes.relative(tight, 9.5, agent_var, 0.25).scale;
        let wide_scale = sizes.relative(wide, 9.5, agent_var, 0.25).scale;
        assert!((1.7..2.0).contains(&tight_scale), "{tight_scale}");
        assert!((0.5..0.55).contains(&wide_scale), "{wide_scale}");
        assert_eq!(
            sizes.relative(system_key("list", "hr"), 9.5, agent_var, 0.25),
            Relative::AGENT
        );
    }

    #[test]
    fn a_pair_is_trusted_sooner_where_the_agents_pairs_differ_widely() {
        let key = system_key("search", "jira");
        let offset = |other_mean: f64| {
            let mut sizes = SystemSizes::default();
            for _ in 0..200 {
                sizes.learn(system_key("search", "siem"), other_mean);
            }
            for _ in 0..20 {
                sizes.learn(key, 10.0);
            }
            // The agent's mean sits near its busy pair; its residuals vary by 1.
            sizes.relative(key, other_mean - 0.3, 1.0, 0.25).offset
        };
        // Pairs far apart (a 35 KB pair beside a 600 KB one): 20 transfers count
        // nearly whole. Pairs alike: they count two thirds, as with ten pseudo-transfers.
        let apart = offset(13.3) / (10.0 - 13.0);
        let alike = offset(10.5) / (10.0 - 10.2);
        assert!((apart - 20.0 / 22.0).abs() < 0.01, "{apart}");
        assert!((alike - 20.0 / 30.0).abs() < 0.01, "{alike}");
    }

    #[test]
    fn a_pair_seen_twice_keeps_at_least_half_the_agents_spread() {
        let mut sizes = SystemSizes::default();
        let key = system_key("write", "s3://exports");
        sizes.learn(key, 20.0);
        sizes.learn(key, 20.0);
        // Its own spread is nil; counted at most half, its variance is at least half
        // the agent's.
        let scale = sizes.relative(key, 10.0, 1.0, 0.25).scale;
        assert!((1.0..=2f64.sqrt() + 1e-9).contains(&scale), "{scale}");
    }

    #[test]
    fn format_11_pairs_carry_over_judged_by_the_agents_spread() {
        let old = SystemSizesV11 {
            entries: vec![SystemMeanV11 {
                key: 7,
                n: 200,
                mean: 20_000,
            }],
        };
        let bytes = postcard::to_stdvec(&old).unwrap();
        assert_eq!(bytes.len(), 1 + 5);
        let read: SystemSizesV11 = postcard::from_bytes(&bytes).unwrap();
        let sizes = SystemSizes::from_v11(&read, 2.0);
        let relative = sizes.relative(7, 9.0, 2.0, 0.25);
        let distance = 20_000.0 / UNITS - 9.0;
        let weight = relative.offset / distance;
        assert!(
            (200.0 / 210.0..=200.0 / 202.0).contains(&weight),
            "{weight}"
        );
        assert!((relative.scale - 1.0).abs() < 1e-3);
    }

    #[test]
    fn a_pair_seen_twice_counts_at_most_half() {
        let mut sizes = SystemSizes::default();
        let key = system_key("write", "s3://exports");
        sizes.learn(key, 20.0);
        sizes.learn(key, 20.0);
        let offset = sizes.relative(key, 10.0, 1.0, 0.25).offset;
        assert!((offset - 10.0 * 2.0 / 4.0).abs() < 1e-3, "{offset}");
    }

    #[test]
    fn an_entry_is_stored_in_seven_bytes_and_read_back_exactly() {
        let mut sizes = SystemSizes::default();
        sizes.learn(system_key("read", "crm"), 10.5);
        sizes.learn(system_key("write", "crm"), 7.25);
        let bytes = postcard::to_stdvec(&sizes).unwrap();
        assert_eq!(bytes.len(), 1 + 2 * 7);
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
        assert!(
            sizes
                .relative(system_key("read", "busy"), 10.0, 1.0, 0.25)
                .offset
                > 1.5
        );
    }
}
