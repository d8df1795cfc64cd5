//! Versioned binary encoding of [`AgentState`] for RocksDB.
//!
//! Layout: one format-version byte, then postcard (varint, schema-less, compact: a
//! typical agent is a few hundred bytes). The version byte lets a future build migrate
//! or refuse old records explicitly instead of misreading them.

use serde::{Deserialize, Serialize};

use super::{
    AgentState, Baseline, Calibration, DetectorSlot, PeerCounts, PendingBaseline, RecentAlerts,
    ResponseState, RiskState,
};
use crate::error::{Error, Result};

/// The format this build writes. Bump it whenever a stored struct changes shape.
/// Version 2 added the recent-alert list, version 3 the pending baseline (and new
/// detector state variants, appended so that older variants still decode; a slot of
/// a retired variant is reset on first use). Version 4 may hold the `high_risk_action`
/// ledger (approval uses and held events), an appended state variant: a version 3
/// record has the same shape and decodes unchanged (its `high_risk_action` slots are
/// `Stateless` and become an empty ledger on first use); the bump makes an older build
/// refuse a version 4 record by name instead of misreading the new variant. Version 5
/// appends `denied_burst`'s state with failure clustering (the old variant is retired:
/// such a slot restarts its rate on first use), the same way, and gives each slot's
/// calibration its open excursions (a version 3 or 4 record is migrated with none
/// open). Version 6 appends `rate`'s state with its count distributions (the old
/// variant is retired: such a slot restarts on first use); a version 5 record has the
/// same shape. Version 7 appends `volume`'s state with per-system sizes; the old
/// variant is retired but carries over whole on first use. Version 8 appends `rate`'s
/// state with the unusual episode it holds back from its distributions, the same way
/// (the format 7 state carries over with nothing held). Version 9 appends
/// `denied_burst`'s state with the evidence of clustering as a likelihood ratio (the
/// format 8 state carries over its failure rate; its clustering evidence restarts).
/// Version 10 appends `rate`'s state with the count of one kind of call in place of
/// the hour window, its moments in single precision and its pending pace stored only
/// while live (the format 9 state carries over its minute and ten-minute windows, the
/// new count starting empty). Version 11 appends `volume`'s state with the mean of
/// every transfer of a pending episode, which a promotion moves the baseline to (the
/// format 10 state carries over whole). Version 12 appends `volume`'s state with the
/// spread of each system's sizes and its moments in single precision (the format 11
/// state carries over, each system starting with the agent's spread). Version 13
/// appends `denied_burst`'s state with the failures of routine calls counted apart (the
/// format 12 state carries over whole). Version 14 appends `volume`'s state with each
/// system's open run of transfers (the format 13 state carries over whole, no run
/// open). Versions 1 to 13 are still read.
pub const FORMAT_VERSION: u8 = 14;

/// The last format whose records decode as [`AgentState`] without migration.
const SAME_SHAPE_SINCE: u8 = 5;

/// A slot's calibration as formats 3 and 4 stored it (counting events, not excursions).
#[derive(Serialize, Deserialize)]
struct CalibrationV4 {
    tests: f32,
    below: [f32; 2],
}

/// A detector slot as formats 3 and 4 stored it.
#[derive(Serialize, Deserialize)]
struct DetectorSlotV4 {
    key: u32,
    state: crate::detect::KindState,
    last_alert_ms: Option<i64>,
    suppressed: u64,
    calibration: CalibrationV4,
}

/// An agent as formats 3 and 4 stored it.
#[derive(Serialize, Deserialize)]
struct AgentStateV4 {
    baseline: Baseline,
    slots: Vec<DetectorSlotV4>,
    risk: RiskState,
    response: ResponseState,
    recent: RecentAlerts,
    pending: PendingBaseline,
    peers: PeerCounts,
}

impl From<AgentStateV4> for AgentState {
    fn from(v4: AgentStateV4) -> Self {
        AgentState {
            baseline: v4.baseline,
            slots: v4
                .slots
                .into_iter()
                .map(|slot| DetectorSlot {
                    key: slot.key,
                    state: slot.state,
                    last_alert_ms: slot.last_alert_ms,
                    suppressed: slot.suppressed,
                    calibration: Calibration {
                        tests: slot.calibration.tests,
                        below: slot.calibration.below,
                        open: 0,
                    },
                })
                .collect(),
            risk: v4.risk,
            response: v4.response,
            recent: v4.recent,
            pending: v4.pending,
            peers: v4.peers,
        }
    }
}

/// A detector slot as formats 1 and 2 stored it (before `calibration`).
#[derive(Deserialize)]
struct DetectorSlotV2 {
    key: u32,
    state: crate::detect::KindState,
    last_alert_ms: Option<i64>,
    suppressed: u64,
}

fn migrate_slots(slots: Vec<DetectorSlotV2>) -> Vec<DetectorSlot> {
    slots
        .into_iter()
        .map(|slot| DetectorSlot {
            key: slot.key,
            state: slot.state,
            last_alert_ms: slot.last_alert_ms,
            suppressed: slot.suppressed,
            calibration: Default::default(),
        })
        .collect()
}

/// An agent as format version 1 stored it (before `recent`).
#[derive(Deserialize)]
struct AgentStateV1 {
    baseline: Baseline,
    slots: Vec<DetectorSlotV2>,
    risk: RiskState,
    response: ResponseState,
}

/// An agent as format version 2 stored it (before `pending`).
#[derive(Deserialize)]
struct AgentStateV2 {
    baseline: Baseline,
    slots: Vec<DetectorSlotV2>,
    risk: RiskState,
    response: ResponseState,
    recent: RecentAlerts,
}

/// Appends the encoding of `state` to `out`.
pub fn encode_state(state: &AgentState, out: &mut Vec<u8>) -> Result<()> {
    out.push(FORMAT_VERSION);
    let encoded =
        postcard::to_extend(state, std::mem::take(out)).map_err(|e| Error::CorruptState {
            agent_id: String::new(),
            reason: format!("cannot encode: {e}"),
        })?;
    *out = encoded;
    Ok(())
}

/// Decodes a stored record for `agent_id`.
pub fn decode_state(agent_id: &str, bytes: &[u8]) -> Result<AgentState> {
    let corrupt = |reason: String| Error::CorruptState {
        agent_id: agent_id.to_owned(),
        reason,
    };
    match bytes.split_first() {
        None => Err(corrupt("empty record".into())),
        Some((&version, body)) if (SAME_SHAPE_SINCE..=FORMAT_VERSION).contains(&version) => {
            postcard::from_bytes(body).map_err(|e| corrupt(format!("postcard: {e}")))
        }
        Some((3 | 4, body)) => postcard::from_bytes::<AgentStateV4>(body)
            .map(AgentState::from)
            .map_err(|e| corrupt(format!("postcard (format 3 or 4): {e}"))),
        Some((2, body)) => postcard::from_bytes::<AgentStateV2>(body)
            .map(|v2| AgentState {
                baseline: v2.baseline,
                slots: migrate_slots(v2.slots),
                risk: v2.risk,
                response: v2.response,
                recent: v2.recent,
                pending: Default::default(),
                peers: Default::default(),
            })
            .map_err(|e| corrupt(format!("postcard (format 2): {e}"))),
        Some((1, body)) => postcard::from_bytes::<AgentStateV1>(body)
            .map(|v1| AgentState {
                baseline: v1.baseline,
                slots: migrate_slots(v1.slots),
                risk: v1.risk,
                response: v1.response,
                recent: Default::default(),
                pending: Default::default(),
                peers: Default::default(),
            })
            .map_err(|e| corrupt(format!("postcard (format 1): {e}"))),
        Some((version, _)) => Err(corrupt(format!(
            "format version {version} is not readable by this build (expects {FORMAT_VERSION})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decode_event, Limits};

    fn sample() -> AgentState {
        let mut state = AgentState::default();
        let line = br#"{"event_id":"e","time":1767605400000,"agent_id":"a","action":"read","system":"crm","credential_id":"k1","owner":"o@x","bytes_out":5}"#;
        let event = decode_event(line, &Limits::default()).unwrap();
        state.baseline.count(&event);
        state.baseline.learn(&event);
        state
    }

    #[test]
    fn round_trips() {
        let state = sample();
        let mut bytes = Vec::new();
        encode_state(&state, &mut bytes).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_state("a", &bytes).unwrap(), state);
    }

    #[test]
    fn idle_slots_are_not_stored_and_the_state_reads_back_equal() {
        let mut state = sample();
        let mut bytes = Vec::new();
        encode_state(&state, &mut bytes).unwrap();
        let idle = |key| DetectorSlot {
            key,
            state: crate::detect::KindState::Stateless,
            last_alert_ms: None,
            suppressed: 0,
            calibration: Calibration::default(),
        };
        state.slots.insert(0, idle(7));
        state.slots.push(idle(8));
        let mut with_idle = Vec::new();
        encode_state(&state, &mut with_idle).unwrap();
        assert_eq!(with_idle, bytes);
        let read = decode_state("a", &with_idle).unwrap();
        assert!(read.slots.iter().all(|slot| !slot.is_idle()));
        assert_eq!(read, state);
        state.slots[0].last_alert_ms = Some(1);
        assert_ne!(read, state, "a slot that alerted is not idle");
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        let mut bytes = Vec::new();
        encode_state(&sample(), &mut bytes).unwrap();
        bytes[0] = 99;
        assert_eq!(
            decode_state("a", &bytes).unwrap_err().code(),
            "state_corrupt"
        );
        assert!(decode_state("a", &[]).is_err());
        assert!(decode_state("a", &[FORMAT_VERSION, 0xff, 0xff]).is_err());
    }

    #[test]
    fn format_1_records_are_migrated() {
        let state = sample();
        let v1 = (&state.baseline, &state.slots, &state.risk, &state.response);
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&v1).unwrap());
        assert_eq!(decode_state("a", &bytes).unwrap(), state);
    }

    #[test]
    fn format_2_records_are_migrated() {
        let state = sample();
        let v2 = (
            &state.baseline,
            &state.slots,
            &state.risk,
            &state.response,
            &state.recent,
        );
        let mut bytes = vec![2u8];
        bytes.extend(postcard::to_stdvec(&v2).unwrap());
        assert_eq!(decode_state("a", &bytes).unwrap(), state);
    }

    /// `state` as formats 3 and 4 stored it.
    fn as_v4(state: &AgentState) -> AgentStateV4 {
        AgentStateV4 {
            baseline: state.baseline.clone(),
            slots: state
                .slots
                .iter()
                .map(|slot| DetectorSlotV4 {
                    key: slot.key,
                    state: slot.state.clone(),
                    last_alert_ms: slot.last_alert_ms,
                    suppressed: slot.suppressed,
                    calibration: CalibrationV4 {
                        tests: slot.calibration.tests,
                        below: slot.calibration.below,
                    },
                })
                .collect(),
            risk: state.risk,
            response: state.response,
            recent: state.recent.clone(),
            pending: state.pending.clone(),
            peers: state.peers,
        }
    }

    #[test]
    fn format_3_records_decode_and_their_policy_slots_become_ledgers() {
        let mut state = sample();
        state.slots.push(DetectorSlot {
            key: 7,
            state: crate::detect::KindState::Stateless,
            last_alert_ms: None,
            suppressed: 0,
            calibration: Calibration {
                tests: 5_000.0,
                below: [7.0, 1.0],
                open: 0,
            },
        });
        let mut bytes = vec![3u8];
        bytes.extend(postcard::to_stdvec(&as_v4(&state)).unwrap());
        let mut decoded = decode_state("a", &bytes).unwrap();
        assert_eq!(decoded, state);
        bytes[0] = 4;
        assert_eq!(decode_state("a", &bytes).unwrap(), state);
        use crate::detect::KindStateOf;
        let ledger = crate::approvals::Ledger::of(&mut decoded.slots[0].state);
        assert_eq!(ledger.uses("apr-1"), 0);
    }

    #[test]
    fn approval_uses_and_held_events_round_trip() {
        let mut state = sample();
        let line = br#"{"event_id":"e","time":1767605400000,"agent_id":"a","action":"delete","system":"crm","approval_id":"apr-9"}"#;
        let event = decode_event(line, &Limits::default()).unwrap();
        let mut ledger = crate::approvals::Ledger::default();
        ledger.record_use("apr-1", 1_767_700_000_000, 1_767_605_400_000);
        assert!(ledger.hold(&event, "apr-9"));
        state.slots.push(DetectorSlot {
            key: 7,
            state: crate::detect::KindState::HighRiskAction(Box::new(ledger)),
            last_alert_ms: None,
            suppressed: 0,
            calibration: Default::default(),
        });
        let mut bytes = Vec::new();
        encode_state(&state, &mut bytes).unwrap();
        assert_eq!(decode_state("a", &bytes).unwrap(), state);
    }

    #[test]
    fn a_typical_agent_fits_the_storage_budget() {
        let mut bytes = Vec::new();
        encode_state(&sample(), &mut bytes).unwrap();
        assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    }
}
