//! The engine that owns detectors, agent state and the store.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use compact_str::CompactString;

use super::credentials::{CredentialLedger, CredentialUse};
use super::decide::{
    announce_fleet, decide, fleet_alert, fleet_carrier, AgentDecisionState, FleetReport, Policy,
};
use super::fleet::{FleetContext, FleetParams, FleetRecord, FleetVerdict};
use super::roster::FleetRoster;
use super::writer::StateWriter;
use crate::approvals::{ApprovalContext, ApprovalStore, ApprovalUpdate, HeldEvent};
use crate::detect::{DetectorSet, Identity, KindState, Observation, Verdict};
use crate::error::Result;
use crate::identity::{Registry, RegistryUpdate};
use crate::model::{Alert, Command, CommandAction, Event};
use crate::signing::Signer;
use crate::state::PeerIndex;
use crate::state::{
    AgentCache, AgentState, AspectVerdicts, EventSlots, OnEncoded, PositionKey, RecentAlert,
    StateStore, Warm,
};
use crate::telemetry::{Absorbed, Metrics};

/// Tuning knobs that are not detector configuration.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Agents kept in memory, changed or not (the cache holds at most this many and
    /// one batch's).
    pub cache_capacity: usize,
    /// Risk and response policy.
    pub policy: Policy,
    /// Record every (event, detector) score in [`Outputs::scores`].
    pub record_scores: bool,
    /// When a deviation shared by many agents is one fleet event.
    pub fleet: FleetParams,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_capacity: crate::state::DEFAULT_CACHE_CAPACITY,
            policy: Policy::default(),
            record_scores: false,
            fleet: FleetParams::default(),
        }
    }
}

/// One detector's score for one event of a batch (for tuning exports).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRow {
    /// Index of the event in the batch.
    pub event: usize,
    /// Index of the detector in [`DetectorSet::iter`] order.
    pub detector: usize,
    /// The score (0 when the detector had nothing to say).
    pub score: f64,
}

/// What a batch produced, in deterministic order.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Alerts, in event order.
    pub alerts: Vec<Alert>,
    /// Commands, in event order.
    pub commands: Vec<Command>,
    /// Per-event scores, when [`EngineOptions::record_scores`] is on.
    pub scores: Vec<ScoreRow>,
}

impl Outputs {
    /// Empties the buffers, keeping their capacity.
    pub fn clear(&mut self) {
        self.alerts.clear();
        self.commands.clear();
        self.scores.clear();
    }
}

/// Scores, decides and learns; owns the agent cache and the state store.
pub struct Engine {
    detectors: DetectorSet,
    options: EngineOptions,
    cache: AgentCache,
    store: Arc<StateStore>,
    metrics: Option<Arc<Metrics>>,
    writer: Option<StateWriter>,
    /// The cache generation of the background write in flight (see
    /// [`AgentCache::mark_landed`]), marked landed only once the writer reports it
    /// written.
    writing: Option<u64>,
    registry: Option<Registry>,
    credentials: CredentialLedger,
    peers: PeerIndex,
    fleet: FleetContext,
    /// The fleet's agents and when each was first seen: the size a rollout's share
    /// is taken of.
    roster: FleetRoster,
    signer: Option<Arc<Signer>>,
    processing_ms: Option<i64>,
    approvals: Option<ApprovalStore>,
    /// Agents with events waiting for an approval (see [`crate::approvals`]); rebuilt
    /// from the stored states on start, like the other cross-agent indexes.
    held: HashSet<CompactString>,
    /// Latest event time processed: held events are released once it passes their
    /// time plus the grace.
    watermark_ms: i64,
}

/// Whether [`Engine::process_event`] sees an event for the first time, or decides an
/// event a detector held back (only that detector runs, nothing is learned again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Fresh,
    Released { detector: u32 },
}

/// How many events ahead each link of an agent's state is asked for (see
/// [`crate::state::Warm`]): one link per event, as the work on one event outlasts a
/// memory read, and the nearer the event, the likelier its lines are still in the
/// first-level cache when it comes.
const WARM_AHEAD: [(usize, Warm); 4] = [
    (4, Warm::Record),
    (3, Warm::Parts),
    (2, Warm::Kinds),
    (1, Warm::Deep),
];

/// Fewest agents in memory for which asking for states ahead pays. A few hundred
/// agents' states fit in a core's second-level cache, and there the asking costs more
/// than it saves (5% of replay's speed on the simulator's 200 agents); on flat loads of
/// 1,000, 3,000 and 10,000 agents it gained 6–8%, 19% and 60–85%.
const WARM_MIN_AGENTS: usize = 512;

impl Engine {
    /// An engine over `store` running `detectors`. Reads every stored agent once to
    /// rebuild the cross-agent credential ledger (see [`CredentialLedger`]).
    pub fn new(detectors: DetectorSet, store: StateStore, options: EngineOptions) -> Result<Self> {
        // One pass over the stored agents rebuilds both cross-agent indexes.
        let mut credentials = CredentialLedger::default();
        let mut peers = PeerIndex::default();
        let mut held = HashSet::new();
        let mut roster = FleetRoster::default();
        store.for_each_agent(|agent_id, state| {
            roster.add_agent(agent_id, &state.baseline);
            credentials.add_agent(agent_id, &state);
            peers.add_agent(agent_id, &state.baseline, &state.peers);
            if state.slots.iter().any(|s| s.state.holds_events()) {
                held.insert(CompactString::new(agent_id));
            }
        })?;
        let fleet = FleetContext::new(options.fleet.clone());
        Ok(Engine {
            cache: AgentCache::new(options.cache_capacity),
            detectors,
            options,
            store: Arc::new(store),
            metrics: None,
            writer: None,
            writing: None,
            registry: None,
            credentials,
            peers,
            fleet,
            roster,
            signer: None,
            processing_ms: None,
            approvals: None,
            held,
            watermark_ms: i64::MIN,
        })
    }

    /// Verifies approvals against `store` from now on (see [`crate::approvals`]).
    /// Without it, `high_risk_action` accepts any `approval_id`.
    pub fn with_approvals(mut self, store: ApprovalStore) -> Self {
        self.approvals = Some(store);
        self
    }

    /// The approvals in force, if an approval source is configured.
    pub fn approvals(&self) -> Option<&ApprovalStore> {
        self.approvals.as_ref()
    }

    /// Applies an approval change between batches. Events that waited for an approval
    /// that has now arrived are decided at the start of the next batch.
    pub fn apply_approval(&mut self, update: ApprovalUpdate) {
        if let Some(store) = &mut self.approvals {
            store.apply(update);
        }
    }

    /// Agents with events waiting for an approval.
    pub fn agents_holding(&self) -> usize {
        self.held.len()
    }

    /// Checks agents against `registry` from now on (policy detectors, owners on alerts).
    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Signs every command with `signer` from now on.
    pub fn with_signer(mut self, signer: Arc<Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The registry, if one is configured.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// Applies a registry change between batches. The first change creates a registry
    /// that is not enforced (see [`Registry::enforces`]): a record or tombstone supplies
    /// facts about the agent it names, never flags the agents it does not.
    pub fn apply(&mut self, update: RegistryUpdate) {
        self.registry
            .get_or_insert_with(Registry::default)
            .apply(update);
    }

    /// Sets the processing time for the batches that follow (`None`, the default: event
    /// time only). A command's expiry counts from the later of its event's time and this,
    /// so an event that arrives late is not answered by a command that is already
    /// expired. Drivers set it before each batch: `run` to the wall clock, `replay` to the
    /// input's watermark (which keeps replays deterministic).
    pub fn set_processing_ms(&mut self, processing_ms: Option<i64>) {
        self.processing_ms = processing_ms;
    }

    /// Publishes counters to `metrics` from now on: batch totals once per batch, and a
    /// finding's counters when it is found (findings are rare).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.register_detectors(self.detectors.iter().map(|i| i.id.as_str()));
        self.metrics = Some(metrics);
        self
    }

    /// The running detectors.
    pub fn detectors(&self) -> &DetectorSet {
        &self.detectors
    }

    /// A shared handle on the state store, for reads from other threads (the service's
    /// rebalance callback reads stored offsets).
    pub fn store_handle(&self) -> Arc<StateStore> {
        Arc::clone(&self.store)
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// The agent cache's hit and miss counts so far.
    pub fn cache_stats(&self) -> crate::state::CacheStats {
        self.cache.stats()
    }

    /// Processes a batch of decoded events, appending what they produce to `out`.
    /// Agents not in memory are loaded from RocksDB first, in one `multi_get`. The
    /// events may be owned or lent (`Event`, `&Event`, `Cow<Event>`): the driver lends
    /// the events a source decoded ahead rather than copying them.
    pub fn process_batch<'e, E: Borrow<Event<'e>>>(
        &mut self,
        events: &[E],
        out: &mut Outputs,
    ) -> Result<()> {
        let mut ids: Vec<&str> = events
            .iter()
            .map(|e| e.borrow().agent_id.as_ref())
            .collect();
        // Room first, so that the cache holds at most its capacity and this batch (with
        // the agents holding events, which the batch may release): the agents of a write
        // in flight may only go once it has landed.
        let incoming = ids.len() + self.held.len();
        if !self.cache.make_room(incoming) {
            self.wait_for_commit()?;
            self.cache.make_room(incoming);
        }
        self.cache.prefetch(&mut ids, &self.store)?;
        let alerts_before = out.alerts.len();
        let commands_before = out.commands.len();
        self.release_held(Some(self.watermark_ms), out)?;
        let warm = self.cache.len() >= WARM_MIN_AGENTS;
        for (index, event) in events.iter().enumerate() {
            if warm {
                self.warm_ahead(events, index);
            }
            self.process_event(index, event.borrow(), out, Pass::Fresh)?;
        }
        self.release_held(Some(self.watermark_ms), out)?;
        if let Some(metrics) = &self.metrics {
            metrics.record_batch(
                events.len() as u64,
                &out.alerts[alerts_before..],
                &out.commands[commands_before..],
            );
            let stats = self.cache.stats();
            metrics.record_cache(self.cache.len(), stats.hits, stats.misses);
        }
        Ok(())
    }

    /// Asks the CPU for the states of the agents of the events after `index` (see
    /// [`WARM_AHEAD`]), except where an event's agent is the one before it, whose state
    /// its predecessor brings in anyway.
    fn warm_ahead<'e, E: Borrow<Event<'e>>>(&self, events: &[E], index: usize) {
        for (ahead, stage) in WARM_AHEAD {
            let at = index + ahead;
            let (Some(next), Some(before)) = (events.get(at), events.get(at - 1)) else {
                continue;
            };
            let agent = &next.borrow().agent_id;
            if *agent != before.borrow().agent_id {
                self.cache.warm(agent, stage);
            }
        }
    }

    /// Decides held events that are due at `now_ms` (their approval arrived, or their
    /// wait ended; `None`: every one), in event order per agent. `run` and `replay` call
    /// it through [`Engine::process_batch`]; [`Engine::release_all`] ends an input.
    fn release_held(&mut self, now_ms: Option<i64>, out: &mut Outputs) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut agents: Vec<CompactString> = self.held.iter().cloned().collect();
        agents.sort_unstable();
        // A holding agent need not be in this batch, nor in memory (after a restart, or
        // evicted): it is decided from its stored state, never from a fresh one that
        // the next commit would write over it.
        let mut ids: Vec<&str> = agents.iter().map(CompactString::as_str).collect();
        self.cache.prefetch(&mut ids, &self.store)?;
        for agent in agents {
            self.release_agent(&agent, now_ms, out)?;
        }
        Ok(())
    }

    /// Decides every event still waiting for an approval, as if each wait had ended:
    /// for the end of a replay's input, after which nothing can arrive.
    pub fn release_all(&mut self, out: &mut Outputs) -> Result<()> {
        self.release_held(None, out)
    }

    fn release_agent(
        &mut self,
        agent_id: &str,
        now_ms: Option<i64>,
        out: &mut Outputs,
    ) -> Result<()> {
        let Some(store) = &self.approvals else {
            return Ok(());
        };
        let state = self.cache.get_mut(agent_id);
        let mut released: Vec<(u32, HeldEvent)> = Vec::new();
        for slot in &mut state.slots {
            if let KindState::HighRiskAction(ledger) = &mut slot.state {
                released.extend(
                    ledger
                        .take_due(now_ms, store)
                        .into_iter()
                        .map(|h| (slot.key, h)),
                );
            }
        }
        if !state.slots.iter().any(|s| s.state.holds_events()) {
            self.held.remove(agent_id);
        }
        // By time, then by instance: the slots' order (which moves as slots come and
        // go) must not decide the order of events held at the same time.
        released.sort_by_key(|(detector, held)| (held.time_ms(), *detector));
        for (detector, held) in &released {
            let event = held.event();
            self.process_event(
                usize::MAX,
                &event,
                out,
                Pass::Released {
                    detector: *detector,
                },
            )?;
        }
        Ok(())
    }

    fn process_event(
        &mut self,
        index: usize,
        event: &Event<'_>,
        out: &mut Outputs,
        pass: Pass,
    ) -> Result<()> {
        if pass == Pass::Fresh {
            self.watermark_ms = self.watermark_ms.max(event.time_ms);
            // An agent's held events are decided before its own later events, so the
            // decision falls at the same point of its sequence however input is batched.
            if !self.held.is_empty() && self.held.contains(event.agent_id.as_ref()) {
                self.release_agent(&event.agent_id, Some(event.time_ms), out)?;
            }
        }
        let state = self.cache.get_mut(&event.agent_id);
        if pass == Pass::Fresh {
            state.baseline.count(event);
            if state.baseline.events == 1 {
                self.roster
                    .join(&event.agent_id, state.baseline.first_seen_ms);
            }
        }
        let now = event.time_ms;
        let registry = self.registry.as_ref();
        let record = registry.and_then(|r| r.agent(&event.agent_id));
        // Owners named by the registry or the event are borrowed; only an agent whose
        // events stopped naming one costs a copy of the earlier claim.
        let claimed = record.and_then(|r| r.owner()).or(event.owner.as_deref());
        let remembered_owner = claimed
            .is_none()
            .then(|| state.baseline.owner.clone())
            .flatten();
        let owner = claimed.or(remembered_owner.as_deref());
        let identity = Identity {
            registry,
            record,
            credential_first_use: event
                .credential_id
                .as_deref()
                .and_then(|c| self.credentials.first_use(c)),
            owner,
            peers: Some(&self.peers),
            approvals: self.approvals.as_ref().map(|store| ApprovalContext {
                store,
                may_hold: pass == Pass::Fresh,
            }),
        };
        let mut aspects = AspectVerdicts::default();
        let AgentState {
            baseline,
            slots,
            risk,
            response,
            recent,
            pending,
            ..
        } = &mut *state;
        // What every instance sees of the event, assembled once.
        let obs = Observation {
            event,
            baseline,
            pending,
            identity,
        };
        let mut slots = EventSlots::new(slots);
        for (detector_index, instance) in self.detectors.iter().enumerate() {
            if !instance.matches(event) {
                continue;
            }
            if let Pass::Released { detector } = pass {
                if instance.key != detector {
                    continue;
                }
            }
            let mut slot = slots.open(instance.key, instance.born_stateless, || {
                instance.detector.new_state()
            });
            let warmed_up = instance.warmed_up(baseline, now);
            let worth_scoring = warmed_up
                || self.options.record_scores
                || !instance.detector.unscored_in_warm_up(&obs);
            let finding = if worth_scoring {
                instance.detector.score(&obs, slots.state(&slot))
            } else {
                None
            };
            if self.options.record_scores && pass == Pass::Fresh {
                out.scores.push(ScoreRow {
                    event: index,
                    detector: detector_index,
                    score: finding.as_ref().map_or(0.0, |f| f.score()),
                });
            }
            // During warm-up a detector learns everything: it does not know yet what is
            // normal, so nothing it scores can be judged an anomaly to be kept out; only
            // a broken rule (a fact, such as activity outside declared hours) alerts.
            // Calibration, too, counts only a warmed-up instance's tests: it measures how
            // often the applied model finds ordinary events improbable, and a baseline
            // still forming finds everything improbable. The gate is computed only for
            // events a detector has something to say about (most have nothing).
            let flagged = finding.and_then(|f| {
                let gate = instance.alert_p(baseline, now);
                let calibration = slots.calibration(&slot);
                let calibrated = f.p_value * instance.calibration_factor(&calibration);
                (calibrated <= gate && (warmed_up || f.rule.is_some())).then_some((f, gate))
            });
            if flagged.is_none() && instance.budget.is_some() && warmed_up {
                slots
                    .slot(&mut slot)
                    .calibration
                    .observe(finding.map(|f| f.p_value));
            }
            let verdict = match flagged {
                None => Verdict::Normal,
                Some((finding, gate)) => {
                    let severity = self.options.policy.severity(instance, &finding);
                    if let Some(metrics) = &self.metrics {
                        metrics.record_finding(&instance.id, severity);
                    }
                    // New behaviour the agent's pending model explains is being
                    // learned; many agents showing it at once is a fleet event. Only
                    // the rest is this agent's own anomaly.
                    let being_learned = finding.pending_p.is_some_and(|p| p > gate);
                    let scope = finding.fleet.or(instance.fleet).filter(|_| !being_learned);
                    let fleet = match scope {
                        Some(scope) => self.fleet.observe(
                            scope,
                            &event.system,
                            &event.agent_id,
                            now,
                            self.roster.size_at(now),
                        ),
                        None => FleetVerdict::Individual,
                    };
                    if let Some(scope) = scope {
                        if !matches!(fleet, FleetVerdict::Fleet { announce: true, .. }) {
                            let half_life = self.options.policy.risk_half_life_ms;
                            self.fleet
                                .carry(scope, &event.system, &event.agent_id, now, || {
                                    fleet_carrier(instance, &obs, &finding, risk.at(now, half_life))
                                });
                        }
                    }
                    let absorbed = match (being_learned, &fleet) {
                        (true, _) => Some(Absorbed::BeingLearned),
                        (false, FleetVerdict::Fleet { .. }) => Some(Absorbed::Fleet),
                        (false, FleetVerdict::Individual) if finding.fleet_only => {
                            Some(Absorbed::FleetOnly)
                        }
                        (false, FleetVerdict::Individual) => None,
                    };
                    // Evidence only of a fleet pattern that this agent shows alone says
                    // nothing about the agent: it is learned like any normal call.
                    let alone = absorbed == Some(Absorbed::FleetOnly);
                    if let (Some(reason), Some(metrics)) = (absorbed, &self.metrics) {
                        metrics.record_absorbed(&instance.id, reason);
                    }
                    match (being_learned, fleet) {
                        (true, _) => {}
                        (
                            false,
                            FleetVerdict::Fleet {
                                scope,
                                window_ms,
                                announce,
                                episode_ms,
                                hold_ms,
                                agents,
                                sample,
                            },
                        ) => {
                            if announce {
                                let report = FleetReport {
                                    scope,
                                    system: &event.system,
                                    agents,
                                    sample: &sample,
                                    window_ms,
                                    episode_ms,
                                    hold_ms,
                                };
                                let risk_now = risk.at(now, self.options.policy.risk_half_life_ms);
                                out.alerts
                                    .push(fleet_alert(instance, &obs, &finding, risk_now, report));
                            }
                        }
                        (false, FleetVerdict::Individual) if alone => {}
                        (false, FleetVerdict::Individual) => {
                            // A finding below every severity is no alert: it needs no
                            // slot for a cooldown it does not start.
                            let decision = severity.and_then(|severity| {
                                decide(
                                    &self.options.policy,
                                    instance,
                                    &obs,
                                    &finding,
                                    severity,
                                    AgentDecisionState {
                                        slot: slots.slot(&mut slot),
                                        risk,
                                        response,
                                    },
                                    self.processing_ms,
                                )
                            });
                            if let Some((alert, mut commands)) = decision {
                                recent.remember(RecentAlert {
                                    time_ms: now,
                                    detector: instance.key,
                                    severity: alert.severity,
                                    anomaly: alert.anomaly,
                                    score: alert.score as f32,
                                });
                                if let Some(signer) = &self.signer {
                                    for command in &mut commands {
                                        signer.sign(command)?;
                                    }
                                }
                                out.alerts.push(alert);
                                out.commands.extend(commands);
                            }
                        }
                    }
                    // What is answered with a revoked credential or a suspension stays
                    // out of every model for good, even evidence that alone would be
                    // learned.
                    if response
                        .in_force(now)
                        .is_some_and(|action| action >= CommandAction::RevokeCredential)
                    {
                        Verdict::Escalated
                    } else if alone {
                        Verdict::Normal
                    } else {
                        Verdict::Flagged
                    }
                }
            };
            if pass == Pass::Fresh {
                aspects.set(instance.guards, verdict);
                instance.detector.learn(&obs, slots.state(&slot), verdict);
            }
            // (A released event was learned from when it was first seen.)
            slots.close(slot);
        }
        if pass != Pass::Fresh {
            return Ok(());
        }
        if event.approval_id.is_some()
            && self.approvals.is_some()
            && state.slots.iter().any(|s| s.state.holds_events())
        {
            self.held.insert(CompactString::new(&event.agent_id));
        }
        // The cross-agent indexes only need what is new to the agent (one hash lookup
        // per new credential or system, not one per event).
        let owner = owner.map(compact_str::CompactString::new);
        let learned = state.learn(event, aspects);
        if learned.new_credential {
            if let Some(credential) = &event.credential_id {
                self.credentials
                    .learned(credential, &event.agent_id, event.time_ms);
            }
        }
        if let (Some(first_use), Some(owner)) = (learned.new_system, owner) {
            self.peers.record_first_use(
                &owner,
                &first_use.system,
                &event.agent_id,
                first_use.first_ms,
                &mut state.peers,
            );
        }
        Ok(())
    }

    /// Shares the credential ledger with other instances: learned first uses are kept
    /// for [`Engine::take_credential_uses`] (see [`CredentialLedger`]).
    pub fn share_credentials(&mut self) {
        self.credentials.share();
    }

    /// First uses of credentials learned here since the last call, to publish.
    pub fn take_credential_uses(&mut self) -> Vec<CredentialUse> {
        self.credentials.take_unshared()
    }

    /// Merges a first use of a credential another instance learned.
    pub fn merge_credential_use(&mut self, shared: &CredentialUse) {
        self.credentials.merge(shared);
    }

    /// Shares the fleet context with other instances: sightings of fleet patterns are
    /// kept for [`Engine::take_fleet_records`] (see [`FleetContext`]).
    pub fn share_fleet(&mut self) {
        self.fleet.share();
        self.peers.share();
        self.roster.share();
    }

    /// What this engine learned about the fleet since the last call, to publish.
    pub fn take_fleet_records(&mut self) -> Vec<FleetRecord> {
        let mut records: Vec<FleetRecord> = self
            .fleet
            .take_unshared()
            .into_iter()
            .map(FleetRecord::Sighting)
            .collect();
        records.extend(
            self.peers
                .take_unshared()
                .into_iter()
                .map(FleetRecord::PeerUse),
        );
        records.extend(
            self.roster
                .take_unshared()
                .into_iter()
                .map(FleetRecord::Joined),
        );
        records
    }

    /// The fleet alerts this engine owes the group after merging other instances'
    /// sightings (see [`FleetContext::announce_late`]): publish them like a batch's.
    pub fn take_late_fleet_alerts(&mut self) -> Vec<Alert> {
        let roster = &mut self.roster;
        self.fleet
            .announce_late(|at_ms| roster.size_at(at_ms))
            .into_iter()
            .map(|late| {
                let mut alert = *late.carrier;
                announce_fleet(
                    &mut alert,
                    FleetReport {
                        scope: late.scope,
                        system: &late.system,
                        agents: late.agents,
                        sample: &late.sample,
                        window_ms: late.window_ms,
                        episode_ms: late.episode_ms,
                        hold_ms: late.hold_ms,
                    },
                );
                alert
            })
            .collect()
    }

    /// Merges what another instance learned about the fleet.
    pub fn merge_fleet_record(&mut self, record: &FleetRecord) {
        match record {
            FleetRecord::Sighting(sighting) => self.fleet.merge_sighting(sighting),
            FleetRecord::PeerUse(use_) => self.peers.merge(use_),
            FleetRecord::Joined(joined) => self.roster.merge(joined),
        }
    }

    /// Writes every agent changed since the last flush and the given source offsets in
    /// one RocksDB batch. Call only after the outputs of the covered events have been
    /// delivered: that ordering is what makes outputs at-least-once and state
    /// exactly-once.
    pub fn commit(&mut self, positions: &[(PositionKey, u64)]) -> Result<usize> {
        let offsets = store_offsets(positions);
        let offsets = offsets.as_slice();
        self.wait_for_commit()?;
        let started = Instant::now();
        let written = self.cache.flush(&self.store, offsets)?;
        if let Some(metrics) = &self.metrics {
            metrics.record_flush(started.elapsed());
        }
        tracing::debug!(
            agents = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "state flushed"
        );
        Ok(written)
    }

    /// Like [`Engine::commit`], but the RocksDB write happens on a background thread
    /// while this one goes on processing; only the encoding is done here, and each
    /// agent's encoding is shown to `on_encoded` (the service's changelog). Waits for the
    /// previous background commit first. [`Engine::wait_for_commit`] says when it landed.
    pub fn commit_in_background(
        &mut self,
        positions: &[(PositionKey, u64)],
        on_encoded: OnEncoded<'_>,
    ) -> Result<()> {
        let offsets = store_offsets(positions);
        let offsets = offsets.as_slice();
        self.wait_for_commit()?;
        // The previous batch has landed: clean agents may now be evicted safely.
        self.cache.evict();
        let batch = self.cache.take_dirty(&self.store, offsets, on_encoded)?;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(StateWriter::start(
                Arc::clone(&self.store),
                self.metrics.clone(),
            )?),
        };
        writer.submit(batch)?;
        self.writing = Some(self.cache.generation());
        Ok(())
    }

    /// True when the agents changed since the last commit fill the cache: a commit is
    /// due now, whatever the policy's interval, or memory would grow with every new agent.
    pub fn needs_commit(&self) -> bool {
        self.cache.needs_flush()
    }

    /// Waits for the background commit in flight, if any. Returns true if one landed.
    pub fn wait_for_commit(&mut self) -> Result<bool> {
        let Some(writer) = &mut self.writer else {
            return Ok(false);
        };
        let landed = writer.wait()?;
        if let (Some(_), Some(generation)) = (&landed, self.writing.take()) {
            self.cache.mark_landed(generation);
        }
        match landed {
            Some((agents, elapsed)) => {
                tracing::debug!(
                    agents,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "state flushed in the background"
                );
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Replaces the stored states of agents with encoded ones read from elsewhere (a
    /// partition's changelog) and records `positions` (the partition's, and those of
    /// what was forwarded into it), in one write, after
    /// any background commit has landed; the agents' unchanged copies in memory are
    /// dropped so the next event loads the restored state (a copy with changes not yet
    /// written is kept: those changes are newer). Returns how many agents were restored.
    pub fn restore(
        &mut self,
        states: &[(String, Vec<u8>)],
        positions: &[(PositionKey, u64)],
    ) -> Result<usize> {
        self.wait_for_commit()?;
        // Every state decodes before anything changes: a record this build cannot read
        // fails the restore with the indexes and the store as they were.
        let decoded = states
            .iter()
            .map(|(id, encoded)| Ok((id, crate::state::decode_state(id, encoded)?)))
            .collect::<Result<Vec<_>>>()?;
        // The cross-agent indexes were built from the states being replaced: take their
        // contributions out and the restored ones in, so that they describe the store.
        let ids: Vec<&str> = states.iter().map(|(id, _)| id.as_str()).collect();
        for old in self.store.load_agents(&ids)?.into_iter().flatten() {
            self.peers.remove_counts(&old.peers);
        }
        for (id, restored) in decoded {
            self.roster.add_agent(id, &restored.baseline);
            self.credentials.add_agent(id, &restored);
            self.peers
                .add_agent(id, &restored.baseline, &restored.peers);
            if restored.slots.iter().any(|s| s.state.holds_events()) {
                self.held.insert(CompactString::new(id));
            }
        }
        let agents = states
            .iter()
            .map(|(id, state)| (id.as_str(), state.as_slice()));
        let offsets: Vec<(&str, u64)> = positions
            .iter()
            .map(|(key, next)| (key.as_str(), *next))
            .collect();
        let written = self.store.write_encoded(agents, &offsets)?;
        for agent in &written {
            if !self.cache.forget(agent) && self.cache.peek(agent).is_some() {
                tracing::warn!(
                    agent,
                    "restored agent has unwritten changes from another partition; they win"
                );
            }
        }
        Ok(written.len())
    }

    /// The next position recorded for `source` by an earlier commit.
    pub fn offset(&self, source: &PositionKey) -> Result<Option<u64>> {
        self.store.offset(source.as_str())
    }

    /// The next source offsets recorded for `source` by an earlier commit, per source
    /// partition, of the records the rekey router forwarded into it (see
    /// [`crate::kafka::forwarded`]).
    pub fn forwarded(&self, source: &PositionKey) -> Result<Vec<(i32, u64)>> {
        let stored = self.store.offsets_under(&source.forwarded_prefix())?;
        Ok(stored
            .into_iter()
            .filter_map(|(from, next)| from.parse::<i32>().ok().map(|from| (from, next)))
            .collect())
    }

    /// The current state of an agent: from memory if it is hot, else from RocksDB.
    pub fn agent(&self, agent_id: &str) -> Result<Option<AgentState>> {
        match self.cache.peek(agent_id) {
            Some(state) => Ok(Some(state.clone())),
            None => self.store.load_agent(agent_id),
        }
    }
}

/// Positions as the store writes them (once per commit, not per event).
fn store_offsets(positions: &[(PositionKey, u64)]) -> Vec<(&str, u64)> {
    positions
        .iter()
        .map(|(key, next)| (key.as_str(), *next))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<Engine>();
    }
}
