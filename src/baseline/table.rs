//! Bounded "things this agent has used" tables.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// One name an agent has used, with when and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The system, action or credential id. Names up to 24 bytes live inline, so a
    /// lookup does not chase a pointer per entry.
    pub name: CompactString,
    /// First use (event time, ms).
    pub first_ms: i64,
    /// Latest use (event time, ms).
    pub last_ms: i64,
    /// Uses (saturating).
    pub count: u32,
}

/// A table of at most `cap` names.
///
/// Per-agent state must stay bounded even for an agent that touches 100,000 distinct
/// systems. When the table is full, the entry with the fewest uses (the oldest on ties)
/// gives way to the newcomer. Frequently used names are what a baseline is for; a name
/// that was evicted merely counts as new again if it returns, which the novelty model
/// already expects from an agent exploratory enough to fill its table. Lookups are a
/// linear scan: typical agents use a handful of names and a scan of a few cache lines
/// beats hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenTable {
    entries: Vec<Seen>,
}

impl SeenTable {
    /// The entry for `name`, if the agent has used it (and it was not evicted).
    pub fn get(&self, name: &str) -> Option<&Seen> {
        self.entries.iter().find(|s| same_name(&s.name, name))
    }

    /// Records one use of `name` at `time_ms`, evicting the least useful entry if the
    /// table already holds `cap` names. Returns true if the name was new to the table.
    pub fn record(&mut self, name: &str, time_ms: i64, cap: usize) -> bool {
        if let Some(seen) = self.entries.iter_mut().find(|s| same_name(&s.name, name)) {
            seen.count = seen.count.saturating_add(1);
            seen.last_ms = seen.last_ms.max(time_ms);
            return false;
        }
        let fresh = Seen {
            name: CompactString::new(name),
            first_ms: time_ms,
            last_ms: time_ms,
            count: 1,
        };
        if self.entries.len() < cap {
            self.entries.push(fresh);
        } else if let Some(victim) = self.entries.iter_mut().min_by_key(|s| (s.count, s.last_ms)) {
            *victim = fresh;
        }
        true
    }

    /// Forgets `name`, returning its entry.
    pub fn remove(&mut self, name: &str) -> Option<Seen> {
        let index = self.entries.iter().position(|s| same_name(&s.name, name))?;
        Some(self.entries.swap_remove(index))
    }

    /// Adds an entry learned elsewhere (a promoted pending system), merging it with an
    /// existing one of the same name, evicting as [`SeenTable::record`] does.
    pub fn insert(&mut self, entry: Seen, cap: usize) {
        if let Some(seen) = self
            .entries
            .iter_mut()
            .find(|s| same_name(&s.name, &entry.name))
        {
            seen.count = seen.count.saturating_add(entry.count);
            seen.first_ms = seen.first_ms.min(entry.first_ms);
            seen.last_ms = seen.last_ms.max(entry.last_ms);
        } else if self.entries.len() < cap {
            self.entries.push(entry);
        } else if let Some(victim) = self.entries.iter_mut().min_by_key(|s| (s.count, s.last_ms)) {
            *victim = entry;
        }
    }

    /// Asks the CPU for the entries' cache lines (see [`crate::state::Warm`]).
    pub fn warm(&self) {
        crate::prefetch::lines(self.entries.as_slice());
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Seen> {
        self.entries.iter()
    }

    /// How many names are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the agent has used nothing yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Name equality that rejects most non-matches on length and last byte before paying
/// for a full comparison (names in one table often share prefixes such as `s3://`).
#[inline]
fn same_name(stored: &str, name: &str) -> bool {
    stored.len() == name.len()
        && stored.as_bytes().last() == name.as_bytes().last()
        && stored == name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_tracks_first_and_last_use() {
        let mut table = SeenTable::default();
        assert!(table.record("crm", 10, 4));
        assert!(!table.record("crm", 30, 4));
        assert!(!table.record("crm", 20, 4));
        let seen = table.get("crm").unwrap();
        assert_eq!((seen.first_ms, seen.last_ms, seen.count), (10, 30, 3));
    }

    #[test]
    fn stays_bounded_and_keeps_the_most_used_names() {
        let mut table = SeenTable::default();
        for _ in 0..50 {
            table.record("crm", 1, 8);
            table.record("mail", 2, 8);
        }
        for i in 0..100_000 {
            table.record(&format!("scratch-{i}"), 3 + i, 8);
        }
        assert_eq!(table.len(), 8);
        assert_eq!(table.get("crm").map(|s| s.count), Some(50));
        assert_eq!(table.get("mail").map(|s| s.count), Some(50));
        assert!(
            table.get("scratch-99999").is_some(),
            "the newest name is kept"
        );
    }
}
