//! RocksDB: agent states and consumed source offsets, committed together.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, Options, WriteBatch, DB};

use super::{decode_state, encode_state, AgentState};
use crate::error::{Error, Result};

const CF_AGENTS: &str = "agents";
const CF_OFFSETS: &str = "offsets";

/// Called with each agent's id and encoded state as a batch is encoded (the service
/// sends them to the changelog topic as well); an error stops the encoding.
pub type OnEncoded<'a> = &'a mut dyn FnMut(&str, &[u8]) -> Result<()>;

/// Agent states and offsets encoded for one atomic write (see [`StateStore::encode`]).
pub struct StateBatch {
    batch: WriteBatch,
    agents: usize,
    bytes: usize,
}

impl StateBatch {
    /// Agents in the batch.
    pub fn agents(&self) -> usize {
        self.agents
    }
}

impl std::fmt::Debug for StateBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBatch")
            .field("agents", &self.agents)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// The durable half of agent state.
///
/// Two column families: `agents` (agent id → versioned [`AgentState`]) and `offsets`
/// (source name → next position to consume). [`StateStore::commit`] writes dirty agents
/// and offsets in a single `WriteBatch`, so after a crash the store holds either both the
/// state changes of a flush and the offsets they cover, or neither.
pub struct StateStore {
    db: DB,
    path: PathBuf,
    writable: bool,
    /// Bytes one agent took in the latest batch encoded (key, value and the batch's
    /// own framing), to size the next batch's buffer in one allocation.
    record_bytes: AtomicUsize,
}

impl Drop for StateStore {
    /// Writes the memtables out on a clean close. RocksDB would otherwise rebuild them
    /// from its write-ahead log at the next open: after a replay whose last commit held
    /// 100k agents, that made the restart take 2.9 s instead of 1.1 s.
    fn drop(&mut self) {
        if !self.writable {
            return;
        }
        let started = std::time::Instant::now();
        for name in [CF_AGENTS, CF_OFFSETS] {
            let flushed = self.db.cf_handle(name).map(|cf| self.db.flush_cf(cf));
            if let Some(Err(error)) = flushed {
                tracing::warn!(path = %self.path.display(), family = name, %error, "state not flushed on close; the next open replays its log");
            }
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "state flushed on close"
        );
    }
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

/// A RocksDB write batch's fixed header (sequence number and count).
const BATCH_HEADER_BYTES: usize = 12;

/// An offset's record in a write batch besides its key: the 8-byte value, the column
/// family, the record's tag and two lengths.
const OFFSET_RECORD_BYTES: usize = 16;

/// What one agent is assumed to take in the first batch a store encodes, before any
/// was measured: about a warmed-up agent's record. A guess too large costs only
/// address space (pages of the buffer never written are never resident).
const FIRST_RECORD_BYTES: usize = 1024;

/// The most a batch's buffer is allocated for up front (a larger batch grows by
/// doubling past it): a cache configured for millions of agents must not ask for
/// gigabytes at once on a host that does not overcommit memory.
const MAX_RESERVED_BYTES: usize = 256 << 20;

/// Size of the agents column family's memtable (see [`StateStore::open`]).
const AGENTS_MEMTABLE_BYTES: usize = 16 << 20;

impl StateStore {
    /// Opens (creating if needed) the store in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::io(format!("creating state directory {}", path.display()), e))?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let mut agents = Options::default();
        let mut table = BlockBasedOptions::default();
        // Cold-agent lookups mostly miss for brand-new agents: a bloom filter answers
        // those without touching data blocks.
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        agents.set_block_based_table_factory(&table);
        agents.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // RocksDB's default memtable (64 MiB, two of them) would be the largest single
        // use of memory for a fleet of 100k agents. Agent records are written once per
        // commit, never read back from the memtable in steady state (the cache holds
        // them), so a smaller one costs only more frequent, smaller flushes.
        agents.set_write_buffer_size(AGENTS_MEMTABLE_BYTES);
        let families = vec![
            ColumnFamilyDescriptor::new(CF_AGENTS, agents),
            ColumnFamilyDescriptor::new(CF_OFFSETS, Options::default()),
        ];
        let db =
            DB::open_cf_descriptors(&options, path, families).map_err(|source| Error::Store {
                path: path.to_owned(),
                source,
            })?;
        Ok(StateStore {
            db,
            path: path.to_owned(),
            writable: true,
            record_bytes: AtomicUsize::new(0),
        })
    }

    /// Opens an existing store for reading only. Works while a service holds the store
    /// open (it sees the state as of the last flush), so `inspect` needs no downtime.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.join("CURRENT").exists() {
            return Err(Error::InvalidInput {
                context: format!("state directory {}", path.display()),
                detail: "no agentwatch state here (run or replay with --state first)".into(),
            });
        }
        let db =
            DB::open_cf_for_read_only(&Options::default(), path, [CF_AGENTS, CF_OFFSETS], false)
                .map_err(|source| Error::Store {
                    path: path.to_owned(),
                    source,
                })?;
        Ok(StateStore {
            db,
            path: path.to_owned(),
            writable: false,
            record_bytes: AtomicUsize::new(0),
        })
    }

    fn store_err(&self, source: rocksdb::Error) -> Error {
        Error::Store {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| Error::CorruptState {
            agent_id: String::new(),
            reason: format!("column family {name} is missing"),
        })
    }

    /// Loads the stored states of `agent_ids` in one `multi_get` (one call per batch of
    /// cold agents, not one per event).
    pub fn load_agents(&self, agent_ids: &[&str]) -> Result<Vec<Option<AgentState>>> {
        let cf = self.cf(CF_AGENTS)?;
        let results =
            self.db
                .batched_multi_get_cf(cf, agent_ids.iter().map(|id| id.as_bytes()), false);
        agent_ids
            .iter()
            .zip(results)
            .map(|(id, result)| match result {
                Ok(Some(bytes)) => decode_state(id, &bytes).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(self.store_err(e)),
            })
            .collect()
    }

    /// Loads one agent.
    pub fn load_agent(&self, agent_id: &str) -> Result<Option<AgentState>> {
        Ok(self.load_agents(&[agent_id])?.pop().flatten())
    }

    /// Writes `agents` and `offsets` atomically (one `WriteBatch`, WAL on). Returns the
    /// number of bytes written for agent values.
    pub fn commit<'a>(
        &self,
        agents: impl IntoIterator<Item = (&'a str, &'a AgentState)>,
        offsets: &[(&str, u64)],
    ) -> Result<usize> {
        let agents = agents.into_iter();
        let expected = agents.size_hint().0;
        let batch = self.encode(agents, expected, offsets, &mut |_, _| Ok(()))?;
        self.write(batch)
    }

    /// Encodes agents and offsets into one batch without writing it, so that the write
    /// (the slow half) can happen on another thread while the engine goes on. Each
    /// agent's encoding is also shown to `on_encoded`.
    ///
    /// `expected` is how many agents come: the batch's buffer is allocated once for
    /// them at the size agents took in the latest batch (and a little more). Grown by
    /// doubling instead, a commit of every agent of a large fleet held its last two
    /// buffers at once, up to twice the batch, at the moment memory peaks.
    pub fn encode<'a>(
        &self,
        agents: impl IntoIterator<Item = (&'a str, &'a AgentState)>,
        expected: usize,
        offsets: &[(&str, u64)],
        on_encoded: OnEncoded<'_>,
    ) -> Result<StateBatch> {
        let agents_cf = self.cf(CF_AGENTS)?;
        let offsets_cf = self.cf(CF_OFFSETS)?;
        let record_bytes = match self.record_bytes.load(Ordering::Relaxed) {
            0 => FIRST_RECORD_BYTES,
            bytes => bytes + bytes / 8,
        };
        let offsets_bytes: usize = offsets
            .iter()
            .map(|(source, _)| source.len() + OFFSET_RECORD_BYTES)
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(
            expected
                .saturating_mul(record_bytes)
                .min(MAX_RESERVED_BYTES)
                .saturating_add(offsets_bytes + BATCH_HEADER_BYTES),
        );
        let mut buffer = Vec::with_capacity(512);
        let mut bytes = 0;
        let mut count = 0;
        for (id, state) in agents {
            buffer.clear();
            encode_state(state, &mut buffer)?;
            on_encoded(id, &buffer)?;
            bytes += buffer.len();
            count += 1;
            batch.put_cf(agents_cf, id.as_bytes(), &buffer);
        }
        let encoded = batch.size_in_bytes().saturating_sub(BATCH_HEADER_BYTES);
        if let Some(per_agent) = encoded.checked_div(count) {
            self.record_bytes.store(per_agent, Ordering::Relaxed);
        }
        for (source, next) in offsets {
            batch.put_cf(offsets_cf, source.as_bytes(), next.to_be_bytes());
        }
        Ok(StateBatch {
            batch,
            agents: count,
            bytes,
        })
    }

    /// Replaces the states of `agents` with already encoded ones (a restore from the
    /// changelog) and records `offsets`, in one atomic write. Each state is decoded
    /// first: one that does not decode is skipped and logged, not stored. Returns the ids
    /// of the agents written.
    pub fn write_encoded<'a>(
        &self,
        agents: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        offsets: &[(&str, u64)],
    ) -> Result<Vec<&'a str>> {
        let agents_cf = self.cf(CF_AGENTS)?;
        let offsets_cf = self.cf(CF_OFFSETS)?;
        let mut batch = WriteBatch::default();
        let mut written = Vec::new();
        for (id, encoded) in agents {
            if let Err(error) = decode_state(id, encoded) {
                tracing::warn!(agent = id, %error, code = error.code(), "skipping a state that does not decode");
                continue;
            }
            batch.put_cf(agents_cf, id.as_bytes(), encoded);
            written.push(id);
        }
        for (source, next) in offsets {
            batch.put_cf(offsets_cf, source.as_bytes(), next.to_be_bytes());
        }
        self.db.write(batch).map_err(|e| self.store_err(e))?;
        Ok(written)
    }

    /// Writes an encoded batch atomically. Returns the bytes of agent values written.
    pub fn write(&self, batch: StateBatch) -> Result<usize> {
        self.db.write(batch.batch).map_err(|e| self.store_err(e))?;
        Ok(batch.bytes)
    }

    /// The next position to consume for `source`, if any flush recorded one.
    pub fn offset(&self, source: &str) -> Result<Option<u64>> {
        let cf = self.cf(CF_OFFSETS)?;
        let Some(bytes) = self
            .db
            .get_cf(cf, source.as_bytes())
            .map_err(|e| self.store_err(e))?
        else {
            return Ok(None);
        };
        offset_value(source, &bytes).map(Some)
    }

    /// Every stored position whose key starts with `prefix`, in key order, with the
    /// rest of its key.
    pub fn offsets_under(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let cf = self.cf(CF_OFFSETS)?;
        let from = rocksdb::IteratorMode::From(prefix.as_bytes(), rocksdb::Direction::Forward);
        let mut found = Vec::new();
        for item in self.db.iterator_cf(cf, from) {
            let (key, value) = item.map_err(|e| self.store_err(e))?;
            let Some(rest) = key.strip_prefix(prefix.as_bytes()) else {
                break;
            };
            let source = String::from_utf8_lossy(&key);
            found.push((
                String::from_utf8_lossy(rest).into_owned(),
                offset_value(&source, &value)?,
            ));
        }
        Ok(found)
    }

    /// Visits every stored agent in key order (for inspection and verification tools).
    pub fn for_each_agent(&self, mut visit: impl FnMut(&str, AgentState)) -> Result<()> {
        let cf = self.cf(CF_AGENTS)?;
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.store_err(e))?;
            let id = String::from_utf8_lossy(&key);
            visit(&id, decode_state(&id, &value)?);
        }
        Ok(())
    }
}

/// A stored position's value: 8 bytes, big-endian.
fn offset_value(source: &str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| Error::CorruptState {
        agent_id: String::new(),
        reason: format!(
            "offset for source {source:?} is {} bytes, not 8",
            bytes.len()
        ),
    })?;
    Ok(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of RocksDB write-ahead log in `dir`: what the next open replays.
    fn log_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .map(|path| std::fs::metadata(path).unwrap().len())
            .sum()
    }

    #[test]
    fn a_clean_close_leaves_no_log_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = AgentState::default();
        state.baseline.events = 7;
        let ids: Vec<String> = (0..2_000).map(|i| format!("agent-{i}")).collect();
        {
            let store = StateStore::open(dir.path()).unwrap();
            store
                .commit(
                    ids.iter().map(|id| (id.as_str(), &state)),
                    &[("replay:x", 9)],
                )
                .unwrap();
            assert!(log_bytes(dir.path()) > 10_000, "the commit is in the log");
        }
        assert!(
            log_bytes(dir.path()) < 1_000,
            "log left for the next open: {} bytes",
            log_bytes(dir.path())
        );
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.offset("replay:x").unwrap(), Some(9));
        assert_eq!(store.load_agent("agent-1999").unwrap(), Some(state));
    }

    #[test]
    fn agents_and_offsets_commit_together_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = AgentState::default();
        state.baseline.events = 42;
        {
            let store = StateStore::open(dir.path()).unwrap();
            assert_eq!(store.offset("replay:x").unwrap(), None);
            store
                .commit([("agent-1", &state)], &[("replay:x", 1_000)])
                .unwrap();
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.offset("replay:x").unwrap(), Some(1_000));
        let loaded = store.load_agents(&["agent-1", "agent-2"]).unwrap();
        assert_eq!(loaded[0].as_ref().map(|s| s.baseline.events), Some(42));
        assert!(loaded[1].is_none());
        let mut seen = Vec::new();
        store
            .for_each_agent(|id, _| seen.push(id.to_owned()))
            .unwrap();
        assert_eq!(seen, ["agent-1"]);
    }
}
