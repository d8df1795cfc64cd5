//! The engine thread's side of the changelog: which partition each agent's events come
//! from (its state is written there), writing states and positions with each commit,
//! restoring a partition taken over, and skipping events a restored state already holds.
//! The format is in [`crate::state::changelog`].

use std::collections::BTreeMap;
use std::time::Instant;

use compact_str::CompactString;
use hashbrown::HashMap;

use crate::config::KafkaConfig;
use crate::drive::Lanes;
use crate::error::Result;
use crate::kafka::changelog::read_partition;
use crate::kafka::forwarded::Forwarded;
use crate::kafka::producer::{Output, OutputProducer};
use crate::kafka::source_name;
use crate::model::Watermark;
use crate::pipeline::Engine;
use crate::state::changelog::{
    position_value, state_value, RestoreBuilder, Restored, POSITION_KEY,
};
use crate::state::PositionKey;
use crate::telemetry::Metrics;

/// The changelog as the engine thread keeps it.
pub(super) struct Changelog {
    kafka: KafkaConfig,
    events: String,
    topic: String,
    /// The partition each agent's latest event came from (looked up at every event:
    /// hashbrown's hasher, not the standard map's SipHash).
    partitions: HashMap<CompactString, i32>,
    /// Agents restored from a commit cut short: their events in that partition below the
    /// offset are already in their state.
    ahead: HashMap<CompactString, (i32, u64)>,
    value: Vec<u8>,
}

impl Changelog {
    pub(super) fn new(kafka: KafkaConfig, events: String, topic: String) -> Self {
        Changelog {
            kafka,
            events,
            topic,
            partitions: HashMap::new(),
            ahead: HashMap::new(),
            value: Vec::with_capacity(1024),
        }
    }

    /// Notes an event of `agent` at `offset` of `partition`. Returns false if the agent's
    /// restored state already holds it (the event must be skipped).
    pub(super) fn admit(&mut self, agent: &str, partition: i32, offset: i64) -> bool {
        if !self.ahead.is_empty() {
            if let Some(&(from, covers)) = self.ahead.get(agent) {
                if from == partition && (offset as u64) < covers {
                    return false;
                }
                self.ahead.remove(agent);
            }
        }
        match self.partitions.get_mut(agent) {
            Some(known) => *known = partition,
            None => {
                self.partitions.insert(CompactString::new(agent), partition);
            }
        }
        true
    }

    /// Queues one agent's encoded state for the partition its events come from, stamped
    /// with that partition's next offset in this commit. An agent changed without an
    /// event here (by an approval, say) has no partition and is not written.
    pub(super) fn write_state(
        &mut self,
        producer: &OutputProducer,
        positions: &BTreeMap<i32, u64>,
        agent: &str,
        encoded: &[u8],
    ) -> Result<()> {
        let Some(&partition) = self.partitions.get(agent) else {
            tracing::debug!(
                agent,
                "changed agent without an event here; not in the changelog"
            );
            return Ok(());
        };
        let next = positions.get(&partition).copied().unwrap_or_default();
        state_value(next, encoded, &mut self.value);
        producer.send_to(
            Output::Changelog,
            &self.topic,
            Some(partition),
            Some(agent.as_bytes()),
            &self.value,
            None,
        )
    }

    /// Queues every partition's position record, with what was forwarded into it and
    /// its watermark: it closes the commit's states.
    pub(super) fn write_positions(
        &mut self,
        producer: &OutputProducer,
        positions: &BTreeMap<i32, u64>,
        forwarded: &Forwarded,
        lanes: &Lanes,
    ) -> Result<()> {
        for (&partition, &next) in positions {
            let watermark = lanes.get(&partition).and_then(Watermark::get);
            position_value(next, forwarded.of(partition), watermark, &mut self.value);
            producer.send_to(
                Output::Changelog,
                &self.topic,
                Some(partition),
                Some(POSITION_KEY),
                &self.value,
                None,
            )?;
        }
        Ok(())
    }

    /// Forgets the agents of partitions given up.
    pub(super) fn release(&mut self, partitions: &[i32]) {
        self.partitions.retain(|_, p| !partitions.contains(p));
        self.ahead.retain(|_, (p, _)| !partitions.contains(p));
    }

    /// Where to start `partition` taken over: the local position if it is at least the
    /// changelog's, else the changelog's after restoring its states into the engine,
    /// with the watermark the changelog committed there.
    pub(super) fn start(
        &mut self,
        engine: &mut Engine,
        metrics: &Metrics,
        partition: i32,
    ) -> Result<Start> {
        let source = source_name(&self.events, partition);
        let local = engine.offset(&source)?;
        let started = Instant::now();
        metrics.restore_started();
        let restored = self.restore(engine, partition, local);
        let agents = restored.as_ref().map_or(0, |r| r.1);
        metrics.restore_finished(agents, started.elapsed());
        let (start, agents) = restored?;
        if start.offset != local {
            tracing::info!(
                partition,
                agents,
                position = start.offset,
                local = ?local,
                watermark_ms = start.watermark_ms,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "partition restored from the changelog"
            );
        }
        Ok(start)
    }

    fn restore(
        &mut self,
        engine: &mut Engine,
        partition: i32,
        local: Option<u64>,
    ) -> Result<(Start, usize)> {
        let mut builder = RestoreBuilder::default();
        read_partition(&self.kafka, &self.topic, partition, &mut builder)?;
        let Some(restored) = builder.finish() else {
            return Ok((Start::local(local), 0));
        };
        let plan = RestorePlan::new(local, restored);
        let agents = if plan.states.is_empty() && plan.forwarded.is_none() {
            0
        } else {
            let positions = plan.positions(&source_name(&self.events, partition));
            engine.restore(&plan.states, &positions)?
        };
        for (agent, covers) in plan.ahead {
            self.ahead
                .insert(CompactString::new(agent), (partition, covers));
        }
        let start = Start {
            offset: Some(plan.start),
            watermark_ms: plan.watermark_ms,
        };
        Ok((start, agents))
    }
}

/// Where a partition taken over starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    /// The next offset to consume (`None`: the partition has no position anywhere).
    pub offset: Option<u64>,
    /// The watermark to take up, when starting from the changelog's position and its
    /// record carries one; starting from the local position, the local store has its
    /// own (`None` here).
    pub watermark_ms: Option<i64>,
}

impl Start {
    /// Starting from the local position, whose watermark the local store holds.
    pub(super) fn local(offset: Option<u64>) -> Self {
        Start {
            offset,
            watermark_ms: None,
        }
    }
}

/// What taking over a partition restores, from its changelog and the local position.
#[derive(Debug, PartialEq)]
struct RestorePlan {
    /// Where consuming starts.
    start: u64,
    /// The agent states to write into the local store.
    states: Vec<(String, Vec<u8>)>,
    /// Agents whose restored state already holds their events below an offset.
    ahead: Vec<(String, u64)>,
    /// Starting from the changelog's position: the next offsets forwarded into the
    /// partition there (`None`: the local store's stand).
    forwarded: Option<Vec<(i32, u64)>>,
    /// Starting from the changelog's position: the watermark committed there, if its
    /// record has one.
    watermark_ms: Option<i64>,
}

impl RestorePlan {
    /// The positions a restore stores for the partition whose position key is
    /// `source`: where it starts and, starting from the changelog's position, the
    /// forwarded offsets and the watermark committed there, so that a restart before
    /// the next commit resumes with them too.
    fn positions(&self, source: &PositionKey) -> Vec<(PositionKey, u64)> {
        let mut positions = vec![(source.clone(), self.start)];
        positions.extend(
            self.forwarded
                .iter()
                .flatten()
                .map(|&(from, next)| (source.forwarded_from(from), next)),
        );
        positions.extend(
            self.watermark_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| (source.watermark(), ms)),
        );
        positions
    }

    /// Behind the changelog's last complete commit, the partition restores every state
    /// and starts there. Up to date with it, the local store stays, except for agents
    /// whose changelog state covers events past the local position (a commit cut short
    /// after its states were written, here or by another member): those states are
    /// restored too, and their events below what they cover are skipped again. Which
    /// agents those are lives nowhere but in the changelog, so it is read on every
    /// takeover: kept only in memory, the list was lost on a restart or when the
    /// partition moved away and back, and such an agent's events were applied twice.
    fn new(local: Option<u64>, restored: Restored) -> Self {
        let Restored {
            position,
            states,
            ahead,
            forwarded,
            watermark_ms,
        } = restored;
        match local {
            Some(local) if local >= position => {
                let ahead: Vec<(String, u64)> = ahead
                    .into_iter()
                    .filter(|(_, covers)| *covers > local)
                    .collect();
                let states = states
                    .into_iter()
                    .filter(|(agent, _)| ahead.iter().any(|(a, _)| a == agent))
                    .collect();
                RestorePlan {
                    start: local,
                    states,
                    ahead,
                    forwarded: None,
                    watermark_ms: None,
                }
            }
            _ => RestorePlan {
                start: position,
                states,
                ahead,
                forwarded: Some(forwarded),
                watermark_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changelog() -> Changelog {
        Changelog::new(
            crate::config::ServiceConfig::default().kafka,
            "events".into(),
            "events-changelog".into(),
        )
    }

    fn restored(position: u64, ahead: &[(&str, u64)]) -> Restored {
        let mut states = vec![("quiet".to_owned(), b"q".to_vec())];
        states.extend(
            ahead
                .iter()
                .map(|(a, _)| (a.to_string(), a.as_bytes().to_vec())),
        );
        Restored {
            position,
            states,
            ahead: ahead.iter().map(|(a, c)| (a.to_string(), *c)).collect(),
            forwarded: vec![(2, position + 7)],
            watermark_ms: Some(1_000 + position as i64),
        }
    }

    #[test]
    fn a_partition_behind_its_changelog_restores_every_state() {
        let plan = RestorePlan::new(Some(50), restored(100, &[("x", 150)]));
        assert_eq!(plan.start, 100);
        assert_eq!(plan.states.len(), 2);
        assert_eq!(plan.ahead, vec![("x".to_owned(), 150)]);
        assert_eq!(plan.forwarded, Some(vec![(2, 107)]));
        assert_eq!(plan.watermark_ms, Some(1_100), "the changelog's watermark");
        let source = PositionKey::kafka("events", 3);
        assert_eq!(
            plan.positions(&source),
            [
                (source.clone(), 100),
                (source.forwarded_from(2), 107),
                (source.watermark(), 1_100)
            ],
            "stored with the restored states"
        );
        assert_eq!(RestorePlan::new(None, restored(100, &[])).start, 100);
    }

    #[test]
    fn a_partition_back_with_its_state_still_skips_what_a_restored_agent_holds() {
        // Restored at 100 with x covering 150, then given away at 120 and back (or
        // restarted): the local store is at 120, the changelog's position too, and x's
        // state (written before the cut) still covers up to 150.
        let plan = RestorePlan::new(Some(120), restored(120, &[("x", 150), ("y", 110)]));
        assert_eq!(plan.start, 120, "the local store is up to date");
        assert_eq!(plan.forwarded, None, "and so are its forwarded offsets");
        assert_eq!(plan.watermark_ms, None, "and its watermark");
        let source = PositionKey::kafka("events", 3);
        assert_eq!(plan.positions(&source), [(source, 120)]);
        assert_eq!(plan.ahead, vec![("x".to_owned(), 150)]);
        assert_eq!(plan.states, vec![("x".to_owned(), b"x".to_vec())]);
        let plan = RestorePlan::new(Some(160), restored(120, &[("x", 150)]));
        assert_eq!(plan.start, 160);
        assert!(plan.states.is_empty() && plan.ahead.is_empty());
    }

    #[test]
    fn events_a_restored_state_already_holds_are_skipped_once() {
        let mut changelog = changelog();
        changelog.ahead.insert("a".into(), (1, 40));
        assert!(
            !changelog.admit("a", 1, 39),
            "below the offset its state covers"
        );
        assert!(changelog.admit("b", 1, 39), "other agents are not affected");
        assert!(
            changelog.admit("a", 1, 40),
            "from that offset on, processed"
        );
        assert!(changelog.ahead.is_empty());
        assert_eq!(changelog.partitions.get("a"), Some(&1));
    }

    #[test]
    fn releasing_a_partition_forgets_its_agents() {
        let mut changelog = changelog();
        assert!(changelog.admit("a", 0, 5));
        assert!(changelog.admit("b", 1, 5));
        changelog.ahead.insert("c".into(), (1, 9));
        changelog.release(&[1]);
        assert_eq!(changelog.partitions.len(), 1);
        assert!(changelog.partitions.contains_key("a"));
        assert!(changelog.ahead.is_empty());
    }
}
