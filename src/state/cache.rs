//! The write-back cache of hot agents.

use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::{AgentState, OnEncoded, StateBatch, StateStore};
use crate::error::Result;

struct Entry {
    /// The agent id, inline for ids up to 24 bytes so that a lookup does not chase a
    /// pointer to compare keys.
    id: CompactString,
    /// Boxed: the table then holds about 48 bytes per bucket instead of the whole
    /// state, and a table is up to half empty after it grows.
    state: Box<AgentState>,
    dirty: bool,
    last_used: u64,
    /// Loaded by a prefetch and not used yet: its first use counts as a miss.
    prefetched: bool,
    /// The write that last took this agent's state ([`AgentCache::take_dirty`]'s
    /// generation; 0: none since it was loaded). Until that write has landed, the store
    /// holds an older state, so the agent must not be evicted.
    written: u64,
}

/// Hit/miss counters, read by telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that needed RocksDB (or created a new agent).
    pub misses: u64,
}

/// Clean agents kept in memory between flushes unless configured otherwise: the service
/// config's documented `[state] cache_capacity` default, and the engine's for `replay`
/// and `demo`. One constant, so every command behaves the same. At ≤ 512 B per agent
/// it bounds the clean part of the cache near 50 MB.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// Hot agents in memory, written back to RocksDB once per flush.
///
/// A RocksDB read costs 20–40× an in-memory state update (DESIGN §6), so the engine
/// reads the store only for agents missing here, once per batch via `multi_get`
/// ([`AgentCache::prefetch`]), and writes only agents changed since the last flush.
/// Agents beyond `capacity` are evicted least recently used first, and only once
/// their latest state is in the store: clean, and not waiting for a write still in
/// flight. Nothing unwritten is ever dropped. Eviction happens when a batch needs room
/// ([`AgentCache::make_room`]) as well as after a flush, so the cache holds at most
/// `capacity` agents and one batch's worth besides: evicting only after a flush let the
/// agents of the last flush stay while as many new ones became dirty, and a capped
/// replay of a million agents held twice its capacity.
pub struct AgentCache {
    entries: HashTable<Entry>,
    hasher: DefaultHashBuilder,
    capacity: usize,
    dirty: usize,
    clock: u64,
    stats: CacheStats,
    /// Writes taken so far ([`AgentCache::take_dirty`]).
    generation: u64,
    /// The newest write known to have landed.
    landed: u64,
}

impl AgentCache {
    /// An empty cache holding up to `capacity` agents: clean ones beyond it are evicted
    /// after a flush, and [`AgentCache::needs_flush`] asks for a flush once `capacity`
    /// agents are dirty.
    pub fn new(capacity: usize) -> Self {
        AgentCache {
            entries: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            capacity: capacity.max(1),
            dirty: 0,
            clock: 0,
            stats: CacheStats::default(),
            generation: 0,
            landed: 0,
        }
    }

    /// Loads every agent of `agent_ids` that is not in memory from `store` in one call.
    /// Agents the store does not know start with an empty state.
    pub fn prefetch(&mut self, agent_ids: &mut Vec<&str>, store: &StateStore) -> Result<()> {
        agent_ids.retain(|id| self.find(id).is_none());
        agent_ids.sort_unstable();
        agent_ids.dedup();
        if agent_ids.is_empty() {
            return Ok(());
        }
        let loaded = store.load_agents(agent_ids)?;
        for (id, state) in agent_ids.iter().zip(loaded) {
            let hash = self.hasher.hash_one(*id);
            let entry = Entry {
                id: CompactString::new(id),
                state: Box::new(state.unwrap_or_default()),
                dirty: false,
                last_used: self.clock,
                prefetched: true,
                written: 0,
            };
            let hasher = &self.hasher;
            self.entries
                .insert_unique(hash, entry, |e| hasher.hash_one(e.id.as_str()));
        }
        Ok(())
    }

    /// The state of `agent_id`, marked dirty (the caller is about to change it).
    /// Agents not prefetched start empty.
    pub fn get_mut(&mut self, agent_id: &str) -> &mut AgentState {
        self.clock += 1;
        let hash = self.hasher.hash_one(agent_id);
        let hasher = &self.hasher;
        let slot = self.entries.entry(
            hash,
            |e| e.id == agent_id,
            |e| hasher.hash_one(e.id.as_str()),
        );
        let entry = match slot {
            Slot::Occupied(occupied) => {
                if occupied.get().prefetched {
                    self.stats.misses += 1;
                } else {
                    self.stats.hits += 1;
                }
                occupied.into_mut()
            }
            Slot::Vacant(vacant) => {
                self.stats.misses += 1;
                vacant
                    .insert(Entry {
                        id: CompactString::new(agent_id),
                        state: Box::default(),
                        dirty: false,
                        last_used: 0,
                        prefetched: false,
                        written: 0,
                    })
                    .into_mut()
            }
        };
        if !entry.dirty {
            entry.dirty = true;
            self.dirty += 1;
        }
        entry.prefetched = false;
        entry.last_used = self.clock;
        &mut entry.state
    }

    fn find(&self, agent_id: &str) -> Option<&Entry> {
        let hash = self.hasher.hash_one(agent_id);
        self.entries.find(hash, |e| e.id == agent_id)
    }

    /// Asks the CPU for the link `stage` of `agent_id`'s state, if it is in memory (see
    /// [`crate::state::Warm`]).
    pub fn warm(&self, agent_id: &str, stage: super::Warm) {
        if let Some(entry) = self.find(agent_id) {
            entry.state.warm(stage);
        }
    }

    /// A read-only view of an agent in memory.
    pub fn peek(&self, agent_id: &str) -> Option<&AgentState> {
        self.find(agent_id).map(|e| &*e.state)
    }

    /// Writes every dirty agent and `offsets` in one batch, marks them clean, then evicts
    /// clean agents beyond capacity. Returns how many agents were written.
    pub fn flush(&mut self, store: &StateStore, offsets: &[(&str, u64)]) -> Result<usize> {
        let batch = self.take_dirty(store, offsets, &mut |_, _| Ok(()))?;
        let count = batch.agents();
        store.write(batch)?;
        self.mark_landed(self.generation);
        self.evict();
        Ok(count)
    }

    /// Encodes every dirty agent and `offsets` into one batch (showing each encoding to
    /// `on_encoded`) and marks the agents clean.
    /// The caller must write the batch before it calls [`AgentCache::evict`] again: an
    /// evicted agent is reloaded from the store, which must then hold its latest state.
    pub fn take_dirty(
        &mut self,
        store: &StateStore,
        offsets: &[(&str, u64)],
        on_encoded: OnEncoded<'_>,
    ) -> Result<StateBatch> {
        let dirty = self
            .entries
            .iter()
            .filter(|e| e.dirty)
            .map(|e| (e.id.as_str(), &*e.state));
        let batch = store.encode(dirty, self.dirty, offsets, on_encoded)?;
        self.generation += 1;
        let generation = self.generation;
        for entry in self.entries.iter_mut().filter(|e| e.dirty) {
            entry.dirty = false;
            entry.written = generation;
        }
        self.dirty = 0;
        Ok(batch)
    }

    /// The generation of the latest write taken ([`AgentCache::take_dirty`]): what the
    /// caller passes to [`AgentCache::mark_landed`] once that write is in the store.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Notes that the writes up to `generation` have landed in the store: the agents
    /// they took may be evicted now. A write that failed is never marked, and its
    /// agents stay in memory.
    pub fn mark_landed(&mut self, generation: u64) {
        self.landed = self.landed.max(generation);
    }

    /// Drops the least recently used agents whose latest state is in the store until
    /// at most `target` agents are held, or none such is left. Dirty agents, and agents
    /// whose write is still in flight, always stay. Returns true if the cache holds at
    /// most `target` agents.
    pub fn evict_to(&mut self, target: usize) -> bool {
        let excess = self.entries.len().saturating_sub(target);
        if excess == 0 {
            return true;
        }
        let landed = self.landed;
        let evictable = |e: &Entry| !e.dirty && e.written <= landed;
        let mut ages: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| evictable(e))
            .map(|e| e.last_used)
            .collect();
        if ages.is_empty() {
            return false;
        }
        let cut = excess.min(ages.len()) - 1;
        let (_, threshold, _) = ages.select_nth_unstable(cut);
        let threshold = *threshold;
        self.entries
            .retain(|e| !evictable(e) || e.last_used > threshold);
        self.entries.len() <= target
    }

    /// Makes room for a batch of `incoming` agents, evicting as [`AgentCache::evict_to`]
    /// does. Returns false if the agents that may not be evicted yet (dirty, or in a
    /// write in flight) leave too little room: the caller waits for that write, marks
    /// it landed and asks again.
    pub fn make_room(&mut self, incoming: usize) -> bool {
        self.evict_to(self.capacity.saturating_sub(incoming))
    }

    /// After a flush has landed: drops the least recently used clean agents beyond
    /// capacity, down to nine tenths of it, so that the next batches find room without
    /// a search each.
    pub fn evict(&mut self) {
        if self.entries.len() > self.capacity {
            self.evict_to(self.capacity - self.capacity / 10);
        }
    }

    /// Forgets an agent (its stored state was replaced underneath, by a restore). A dirty
    /// agent is kept: nothing unwritten is ever dropped. Returns true if it was dropped.
    pub fn forget(&mut self, agent_id: &str) -> bool {
        let hash = self.hasher.hash_one(agent_id);
        match self.entries.find_entry(hash, |e| e.id == agent_id) {
            Ok(entry) if !entry.get().dirty => {
                entry.remove();
                true
            }
            _ => false,
        }
    }

    /// Agents currently in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no agent is in memory.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Agents changed since the last flush.
    pub fn dirty_count(&self) -> usize {
        self.dirty
    }

    /// True when the agents changed since the last flush fill the capacity: they cannot
    /// be evicted before a flush, so memory stays bounded only if one happens now,
    /// whatever the commit policy's interval (a load that touches a new agent with
    /// nearly every event, or a burst of agents, would otherwise hold them all).
    pub fn needs_flush(&self) -> bool {
        self.dirty >= self.capacity
    }

    /// Hit/miss counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_writes_only_dirty_agents_and_eviction_keeps_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut cache = AgentCache::new(10);
        for i in 0..30 {
            cache.get_mut(&format!("agent-{i}")).baseline.events = i;
        }
        assert_eq!(cache.flush(&store, &[]).unwrap(), 30);
        assert!(
            cache.len() <= 10,
            "evicted down to capacity, have {}",
            cache.len()
        );
        assert!(
            cache.peek("agent-29").is_some(),
            "the most recent agent stays"
        );
        assert_eq!(cache.flush(&store, &[]).unwrap(), 0, "nothing dirty");

        let mut ids = vec!["agent-3", "agent-29"];
        cache.prefetch(&mut ids, &store).unwrap();
        assert_eq!(
            cache.get_mut("agent-3").baseline.events,
            3,
            "reloaded from RocksDB"
        );
        let stats = cache.stats();
        assert_eq!(stats.misses, 31);
        assert_eq!(stats.hits, 0);
        cache.get_mut("agent-29");
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn an_agent_whose_write_is_in_flight_stays_until_the_write_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut cache = AgentCache::new(2);
        cache.get_mut("a").baseline.events = 1;
        cache.get_mut("b").baseline.events = 2;
        let batch = cache.take_dirty(&store, &[], &mut |_, _| Ok(())).unwrap();
        // Clean, but the store does not hold them yet: no room for a third agent.
        assert!(!cache.make_room(1));
        assert_eq!(cache.len(), 2);
        store.write(batch).unwrap();
        cache.mark_landed(cache.generation());
        assert!(cache.make_room(1));
        assert!(
            cache.peek("a").is_none(),
            "the least recently used goes first"
        );
        assert!(cache.peek("b").is_some());
        let mut ids = vec!["a"];
        cache.prefetch(&mut ids, &store).unwrap();
        assert_eq!(cache.get_mut("a").baseline.events, 1, "reloaded as written");
        // Dirty agents never go, whatever has landed.
        cache.get_mut("b");
        assert!(!cache.make_room(1), "two dirty agents fill a cache of two");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_full_set_of_dirty_agents_asks_for_a_flush_and_clean_ones_are_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut cache = AgentCache::new(3);
        cache.get_mut("a");
        cache.get_mut("b");
        cache.get_mut("a");
        assert!(!cache.needs_flush(), "two dirty agents of three");
        cache.get_mut("c");
        assert!(cache.needs_flush(), "three dirty agents fill the cache");
        cache.flush(&store, &[]).unwrap();
        assert!(!cache.needs_flush());
        assert_eq!(cache.dirty_count(), 0);

        cache.get_mut("d");
        cache.get_mut("e");
        cache.flush(&store, &[]).unwrap();
        assert!(cache.len() <= 3, "evicted to capacity: {}", cache.len());
    }
}
