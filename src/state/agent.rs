//! The state kept for one agent.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::baseline::{
    Baseline, Calibration, PeerCounts, Pending, PendingBaseline, MAX_ACTIONS, MAX_SYSTEMS,
};
use crate::detect::{Aspect, KindState, Verdict};
use crate::model::{Anomaly, CommandAction, Event, Severity};
use crate::stats::decay_factor;

/// One detector instance's numbers for this agent, plus the engine's cooldown bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSlot {
    /// Stable hash of the detector instance id (see [`crate::detect::instance_key`]).
    pub key: u32,
    /// The detector kind's own state.
    pub state: KindState,
    /// Event time of this detector's latest alert for this agent.
    pub last_alert_ms: Option<i64>,
    /// Findings swallowed by the cooldown since that alert.
    pub suppressed: u64,
    /// How often this agent's ordinary events reach small p-values.
    pub calibration: Calibration,
}

/// Accumulated risk: findings add to it, and it decays with a half-life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskState {
    /// Risk as of `at_ms`.
    pub value: f64,
    /// When `value` was last brought up to date.
    pub at_ms: i64,
}

impl RiskState {
    /// Risk decayed to `now_ms`.
    pub fn at(&self, now_ms: i64, half_life_ms: i64) -> f64 {
        self.value * decay_factor(now_ms - self.at_ms, half_life_ms)
    }

    /// Adds `amount` at `now_ms`, but raises the risk no higher than `ceiling` (risk
    /// already above it stays), and returns the new risk.
    pub fn add_up_to(&mut self, now_ms: i64, half_life_ms: i64, amount: f64, ceiling: f64) -> f64 {
        let before = self.at(now_ms, half_life_ms);
        self.value = before.max((before + amount).min(ceiling));
        self.at_ms = self.at_ms.max(now_ms);
        self.value
    }
}

/// What the engine has already told enforcers about this agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseState {
    /// The strongest command still in force.
    pub active: Option<CommandAction>,
    /// When it lapses (event time, ms).
    pub until_ms: i64,
    /// Commands issued so far, per action (mildest first); drives longer expiries for
    /// repeat offenders.
    pub offences: [u32; 3],
}

impl ResponseState {
    /// The command in force at `now_ms`, if any.
    pub fn in_force(&self, now_ms: i64) -> Option<CommandAction> {
        self.active.filter(|_| now_ms < self.until_ms)
    }
}

/// Most recent alerts remembered per agent (for `inspect`).
pub const MAX_RECENT_ALERTS: usize = 8;

/// A compact record of one alert, kept so that `inspect` can answer "why was my agent
/// flagged?" without a trip to the SIEM. The full alert is on the alerts topic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecentAlert {
    /// Event time of the alert.
    pub time_ms: i64,
    /// Key of the detector instance (see [`crate::detect::instance_key`]).
    pub detector: u32,
    /// Severity.
    pub severity: Severity,
    /// Kind of deviation.
    pub anomaly: Anomaly,
    /// Score (0..1).
    pub score: f32,
}

/// Everything stored for one agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentState {
    /// What is normal for the agent.
    pub baseline: Baseline,
    /// One slot per detector instance that has something to keep about this agent:
    /// per-agent numbers, a calibration or an alert's cooldown. A stateless check that
    /// has done neither gets no slot in memory ([`EventSlots`]), and a slot that went idle
    /// again (see [`DetectorSlot::is_idle`]) is not stored: a policy detector that never
    /// alerted on the agent would cost every agent a slot for nothing.
    #[serde(serialize_with = "serialize_active_slots")]
    pub slots: Vec<DetectorSlot>,
    /// Accumulated risk.
    pub risk: RiskState,
    /// Commands in force and history.
    pub response: ResponseState,
    /// The latest alerts.
    pub recent: RecentAlerts,
    /// Flagged systems and hours awaiting promotion into the baseline.
    pub pending: PendingBaseline,
    /// Where this agent's first uses of systems landed relative to its peers.
    pub peers: PeerCounts,
}

/// How the detectors that guard each aspect of the shared baseline judged an event.
///
/// Each aspect is guarded by the kind that reads it (`new_system` the systems,
/// `off_hours` the hours, `credential_misuse` the credentials): a finding of one kind
/// keeps only its own aspect out. A transfer flagged for its size still touched a
/// known system in a known hour, and a policy finding never freezes behavioural
/// learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AspectVerdicts {
    /// For the systems table (`new_system`).
    pub systems: Verdict,
    /// For the hour-of-week profile (`off_hours`).
    pub hours: Verdict,
    /// For the credentials table (`credential_misuse`).
    pub credentials: Verdict,
}

impl Default for AspectVerdicts {
    fn default() -> Self {
        AspectVerdicts {
            systems: Verdict::Normal,
            hours: Verdict::Normal,
            credentials: Verdict::Normal,
        }
    }
}

impl AspectVerdicts {
    /// Records the verdict of a detector guarding `aspect`; the strongest verdict wins
    /// when two instances guard the same aspect.
    pub fn set(&mut self, aspect: Aspect, verdict: Verdict) {
        let slot = match aspect {
            Aspect::Own => return,
            Aspect::Systems => &mut self.systems,
            Aspect::Hours => &mut self.hours,
            Aspect::Credentials => &mut self.credentials,
        };
        *slot = (*slot).max(verdict);
    }
}

impl AgentState {
    /// Learns an event aspect by aspect: normal aspects go into the baseline, flagged
    /// ones into the pending baseline (and on into the baseline once they persist),
    /// escalated ones nowhere. Says what was new to the agent, for the engine's
    /// cross-agent indexes.
    pub fn learn(&mut self, event: &Event<'_>, verdicts: AspectVerdicts) -> Learned {
        let baseline = &mut self.baseline;
        let mut new_system = None;
        match verdicts.systems {
            Verdict::Normal => {
                if baseline.learn_system(event) {
                    new_system = FirstUse::of(&baseline.systems, &event.system);
                }
            }
            Verdict::Flagged => {
                baseline
                    .actions
                    .record(&event.action, event.time_ms, MAX_ACTIONS);
                if let Pending::Promoted(entry) =
                    self.pending.hold_system(&event.system, event.time_ms)
                {
                    let name = entry.name.clone();
                    baseline.systems.insert(entry, MAX_SYSTEMS);
                    new_system = FirstUse::of(&baseline.systems, &name);
                }
            }
            Verdict::Escalated => self.pending.drop_escalated(Some(&event.system), None),
        }
        match verdicts.hours {
            Verdict::Normal => baseline.learn_hour(event.time_ms),
            Verdict::Flagged => {
                if let Some(events) = self.pending.hold_hour(event.time_ms) {
                    PendingBaseline::promote_hour(&mut baseline.hours, event.time_ms, events);
                    baseline.learned += u64::from(events);
                }
            }
            Verdict::Escalated => self.pending.drop_escalated(None, Some(event.time_ms)),
        }
        Learned {
            new_credential: verdicts.credentials == Verdict::Normal
                && baseline.learn_credential(event),
            new_system,
        }
    }
}

/// What an event taught an agent's baseline that the agent did not know before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// The event's credential is new to the agent.
    pub new_credential: bool,
    /// A system joined the agent's baseline (first seen, or promoted from pending).
    pub new_system: Option<FirstUse>,
}

/// A system that joined an agent's baseline, and the agent's first use of it as the
/// baseline records it: a promoted system's first use is its first sighting, not the
/// event that promoted it, so that the peer index, rebuilt from stored baselines on
/// start, sees the same time the running engine recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstUse {
    /// The system.
    pub system: CompactString,
    /// The agent's first use of it (event time, milliseconds since the Unix epoch).
    pub first_ms: i64,
}

impl FirstUse {
    /// The first use of `system` as `table` holds it.
    fn of(table: &crate::baseline::SeenTable, system: &str) -> Option<Self> {
        table.get(system).map(|seen| FirstUse {
            system: seen.name.clone(),
            first_ms: seen.first_ms,
        })
    }
}

/// The latest alerts, oldest first (at most [`MAX_RECENT_ALERTS`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentAlerts(Vec<RecentAlert>);

impl RecentAlerts {
    /// Remembers an alert, forgetting the oldest beyond [`MAX_RECENT_ALERTS`].
    pub fn remember(&mut self, alert: RecentAlert) {
        if self.0.len() >= MAX_RECENT_ALERTS {
            self.0.remove(0);
        }
        self.0.push(alert);
    }

    /// The alerts, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, RecentAlert> {
        self.0.iter()
    }
}

/// Two states are equal when they would be stored alike: the same slots that hold
/// anything, in any order (an idle slot is not stored, and a slot is recreated at its
/// instance's place once it has something to keep again), and everything else equal.
impl PartialEq for AgentState {
    fn eq(&self, other: &Self) -> bool {
        fn active(state: &AgentState) -> Vec<&DetectorSlot> {
            let mut slots: Vec<&DetectorSlot> =
                state.slots.iter().filter(|slot| !slot.is_idle()).collect();
            slots.sort_by_key(|slot| slot.key);
            slots
        }
        self.baseline == other.baseline
            && self.risk == other.risk
            && self.response == other.response
            && self.recent == other.recent
            && self.pending == other.pending
            && self.peers == other.peers
            && active(self) == active(other)
    }
}

/// Serializes the slots that hold anything.
/// (Counted first, as postcard writes a sequence's length before its items: no list of
/// the active slots is built for every agent a commit encodes.)
fn serialize_active_slots<S: serde::Serializer>(
    slots: &[DetectorSlot],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let active = || slots.iter().filter(|slot| !slot.is_idle());
    let mut seq = serializer.serialize_seq(Some(active().count()))?;
    for slot in active() {
        seq.serialize_element(slot)?;
    }
    seq.end()
}

impl DetectorSlot {
    /// True if the slot holds nothing a fresh slot would not: a stateless kind that has
    /// neither alerted nor been calibrated on this agent.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, KindState::Stateless)
            && self.last_alert_ms.is_none()
            && self.suppressed == 0
            && self.calibration == Calibration::default()
    }

    /// Index of the slot for detector `key` in `slots`, if the agent has one.
    ///
    /// The engine asks for the instances' slots in the instances' order with `hint`
    /// just past the previous instance's slot, and a slot found elsewhere is moved to
    /// `hint`: the list keeps the instances' order, and the first look finds the slot
    /// of every instance that has one. (An instance without a slot costs a look at each
    /// slot here; [`EventSlots`] asks only when its bit mask cannot rule the slot out.)
    #[inline]
    pub fn find(slots: &mut [DetectorSlot], key: u32, hint: usize) -> Option<usize> {
        if slots.get(hint).is_some_and(|s| s.key == key) {
            return Some(hint);
        }
        let found = slots.iter().position(|s| s.key == key)?;
        if found > hint {
            slots.swap(hint, found);
            return Some(hint);
        }
        Some(found)
    }

    /// Adds a slot for detector `key` holding `state` at `at` (or last); returns its
    /// index.
    ///
    /// The list grows one slot at a time rather than doubling: an agent gains a slot a
    /// handful of times in its life, and a doubled list would leave up to half of it
    /// unused for every agent in memory.
    pub fn insert(slots: &mut Vec<DetectorSlot>, key: u32, state: KindState, at: usize) -> usize {
        let at = at.min(slots.len());
        slots.reserve_exact(1);
        slots.insert(
            at,
            DetectorSlot {
                key,
                state,
                last_alert_ms: None,
                suppressed: 0,
                calibration: Calibration::default(),
            },
        );
        at
    }
}

/// An agent's detector slots while the engine runs its instances on one event, in
/// the instances' order; an instance's slot is created only once it must hold
/// something.
///
/// A stateless kind (most policy checks, `off_hours`) that has neither alerted on an
/// agent nor been calibrated on it needs no slot: such an idle slot is not stored, and
/// in memory it would cost every agent a slot per instance and the engine a cache line
/// per instance per event. Until something must be kept, the kind works on a scratch
/// `Stateless` state; a kind that turns it into real state (`high_risk_action`
/// holding an event for approval) gets its slot then.
pub struct EventSlots<'a> {
    slots: &'a mut Vec<DetectorSlot>,
    /// Bit `key % 64` of every slot's key: most instances without a slot are told so
    /// by one bit instead of a look at every slot.
    present: u64,
    /// Where the next instance's slot probably is (see [`DetectorSlot::find`]).
    hint: usize,
    /// The state of the instance being run while it has no slot; `Stateless` between
    /// instances.
    scratch: KindState,
}

fn key_bit(key: u32) -> u64 {
    1 << (key % 64)
}

/// Where one instance's slot is in [`EventSlots`], or would go.
pub struct SlotRef {
    key: u32,
    at: usize,
    exists: bool,
}

impl<'a> EventSlots<'a> {
    /// The slots of one agent, for one event.
    pub fn new(slots: &'a mut Vec<DetectorSlot>) -> Self {
        let present = slots.iter().fold(0, |bits, slot| bits | key_bit(slot.key));
        EventSlots {
            slots,
            present,
            hint: 0,
            scratch: KindState::Stateless,
        }
    }

    /// The slot of the next instance run, `key`: a kind whose fresh state is not
    /// `Stateless` (`born_stateless` false) gets its slot from `fresh` now, the others
    /// only when needed.
    #[inline]
    pub fn open(
        &mut self,
        key: u32,
        born_stateless: bool,
        fresh: impl FnOnce() -> KindState,
    ) -> SlotRef {
        let hint = self.hint;
        let found = if self.present & key_bit(key) == 0 {
            None
        } else {
            DetectorSlot::find(self.slots, key, hint)
        };
        let mut slot = match found {
            Some(at) => SlotRef {
                key,
                at,
                exists: true,
            },
            None => SlotRef {
                key,
                at: hint,
                exists: false,
            },
        };
        if !slot.exists && !born_stateless {
            slot.at = DetectorSlot::insert(self.slots, key, fresh(), hint);
            slot.exists = true;
            self.present |= key_bit(key);
        }
        self.hint = if slot.exists { slot.at + 1 } else { hint };
        slot
    }

    /// The kind's state: the slot's, or the scratch state while there is no slot.
    #[inline]
    pub fn state(&mut self, slot: &SlotRef) -> &mut KindState {
        if slot.exists {
            &mut self.slots[slot.at].state
        } else {
            &mut self.scratch
        }
    }

    /// The calibration so far (a fresh one while there is no slot).
    #[inline]
    pub fn calibration(&self, slot: &SlotRef) -> Calibration {
        if slot.exists {
            self.slots[slot.at].calibration
        } else {
            Calibration::default()
        }
    }

    /// The slot, created now if the agent has none, holding the scratch state.
    pub fn slot(&mut self, slot: &mut SlotRef) -> &mut DetectorSlot {
        if !slot.exists {
            let state = std::mem::replace(&mut self.scratch, KindState::Stateless);
            slot.at = DetectorSlot::insert(self.slots, slot.key, state, slot.at);
            slot.exists = true;
            self.present |= key_bit(slot.key);
            self.hint = slot.at + 1;
        }
        &mut self.slots[slot.at]
    }

    /// Done with an instance: keeps what its kind wrote into the scratch state, if
    /// anything, in a new slot.
    #[inline]
    pub fn close(&mut self, mut slot: SlotRef) {
        if !slot.exists && !matches!(self.scratch, KindState::Stateless) {
            self.slot(&mut slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::HOUR_MS;
    use crate::model::{decode_event, Limits};

    const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn a_slot_is_found_by_its_key_and_moved_to_where_it_was_looked_for_first() {
        let mut slots = Vec::new();
        let keys = |slots: &[DetectorSlot]| slots.iter().map(|s| s.key).collect::<Vec<_>>();
        for (at, key) in [7, 9, 8].into_iter().enumerate() {
            assert_eq!(
                DetectorSlot::insert(&mut slots, key, KindState::Stateless, at),
                at
            );
        }
        assert_eq!(
            DetectorSlot::find(&mut slots, 9, 1),
            Some(1),
            "where hinted"
        );
        assert_eq!(
            DetectorSlot::find(&mut slots, 8, 1),
            Some(1),
            "moved to the hint"
        );
        assert_eq!(keys(&slots), [7, 8, 9]);
        assert_eq!(
            DetectorSlot::find(&mut slots, 7, 2),
            Some(0),
            "a slot before the hint stays"
        );
        assert_eq!(keys(&slots), [7, 8, 9]);
        assert_eq!(DetectorSlot::find(&mut slots, 5, 0), None);
        assert_eq!(
            DetectorSlot::insert(&mut slots, 5, KindState::Stateless, 1),
            1
        );
        assert_eq!(
            DetectorSlot::insert(&mut slots, 6, KindState::Stateless, 9),
            4
        );
        assert_eq!(keys(&slots), [7, 5, 8, 9, 6]);
    }

    /// Learns `system` at `time_ms` with the systems aspect judged `verdict`.
    fn learn(state: &mut AgentState, system: &str, time_ms: i64, verdict: Verdict) -> Learned {
        let line = format!(
            r#"{{"event_id":"e{time_ms}","time":{time_ms},"agent_id":"a","action":"read","system":"{system}"}}"#
        );
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        let verdicts = AspectVerdicts {
            systems: verdict,
            ..AspectVerdicts::default()
        };
        state.learn(&event, verdicts)
    }

    #[test]
    fn a_system_is_new_at_its_first_use_even_when_promoted_later() {
        let mut state = AgentState::default();
        assert_eq!(
            learn(&mut state, "crm", T0, Verdict::Normal).new_system,
            Some(FirstUse {
                system: "crm".into(),
                first_ms: T0
            })
        );
        assert_eq!(
            learn(&mut state, "crm", T0 + 1, Verdict::Normal).new_system,
            None
        );
        // A flagged system joins the baseline once it has recurred on three distinct
        // hours; its first use is still its first sighting, as the stored table says.
        assert_eq!(
            learn(&mut state, "wiki", T0, Verdict::Flagged).new_system,
            None
        );
        assert_eq!(
            learn(&mut state, "wiki", T0 + HOUR_MS, Verdict::Flagged).new_system,
            None
        );
        let promoted = learn(&mut state, "wiki", T0 + 5 * HOUR_MS, Verdict::Flagged);
        assert_eq!(
            promoted.new_system,
            Some(FirstUse {
                system: "wiki".into(),
                first_ms: T0
            })
        );
        assert_eq!(
            state.baseline.systems.get("wiki").map(|seen| seen.first_ms),
            Some(T0)
        );
    }
}
