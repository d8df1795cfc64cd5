//! Detector kinds, one file each (the [`catalogue`](super::catalogue) lists them), and
//! [`KindState`], the per-agent state of any of them.

mod call_counts;
pub mod credential_misuse;
pub mod denied_burst;
pub mod high_risk_action;
pub mod new_system;
pub mod off_hours;
pub mod rate;
pub mod retired;
pub mod scope_violation;
mod shadow;
mod sliding;
mod system_runs;
mod system_sizes;
pub mod unregistered_agent;
pub mod volume;
mod window;

pub use shadow::Shadow;
pub use sliding::SlidingCount;
pub use window::TumblingWindow;

use serde::{Deserialize, Serialize};

use crate::detect::{Finding, Rule};
use crate::model::Anomaly;

/// The p-value given to a broken rule. Policy findings are facts, not statistics, so
/// they score 1.0 (see [`crate::stats::score_from_p`]) and need no warm-up.
pub const FACT_P: f64 = 1e-10;

/// A finding for a broken `rule`: the kind's `summarize`/`explain` match on
/// [`Finding::rule`]; the evidence names it (see [`Rule`]).
pub fn fact(anomaly: Anomaly, rule: Rule) -> Finding {
    Finding {
        p_value: FACT_P,
        anomaly,
        observed: 1.0,
        expected: 0.0,
        unit: "violations",
        statistic: rule.statistic(),
        statistic_value: rule.wire_value(),
        baseline_size: 0,
        pending_p: None,
        magnitude: f64::INFINITY,
        learning: false,
        response_cap: None,
        fleet_only: false,
        fleet: None,
        rule: Some(rule),
    }
}

/// Per-agent state of one detector instance, one variant per kind.
///
/// An enum rather than a boxed trait object keeps agent state in one allocation and
/// serializable with the rest of the agent record.
///
/// Variants are only ever appended (postcard stores the variant's index): a kind whose
/// state changes shape gets a new variant and its old one is kept, renamed `Retired*`,
/// so that stored agents still decode; such a slot is reset on first use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KindState {
    /// `new_system` state of state format 2 and earlier.
    RetiredNewSystem(Box<retired::NewSystemV2>),
    /// `volume` state of state format 2 and earlier.
    RetiredVolume(Box<retired::VolumeV2>),
    /// `rate` state of state format 2 and earlier.
    RetiredRate(Box<retired::RateV2>),
    /// Kinds that keep nothing per agent (policy checks, and `off_hours`, which reads
    /// the shared baseline).
    Stateless,
    /// `denied_burst` state of state format 4 and earlier (before clustering).
    RetiredDeniedBurst(Box<retired::DeniedBurstV4>),
    /// `volume` state of state format 6 and earlier (sizes judged agent-wide). It
    /// carries over: see [`volume::State`]'s `From<VolumeV6>`.
    RetiredVolumeV6(Box<retired::VolumeV6>),
    /// `rate` state of state format 5 and earlier (before its count distributions).
    RetiredRateV5(Box<retired::RateV5>),
    /// See [`new_system`].
    NewSystem(new_system::State),
    /// See [`high_risk_action`]: approval uses and events waiting for an approval.
    /// (Agents stored before it existed hold `Stateless` here, which is reset to an
    /// empty ledger on first use: nothing was counted before verification existed.)
    HighRiskAction(Box<crate::approvals::Ledger>),
    /// `denied_burst` state of state format 8 and earlier (clustering by a moment
    /// estimate). Its failure rate carries over: see [`denied_burst::State`]'s
    /// `From<DeniedBurstV8>`.
    RetiredDeniedBurstV8(Box<retired::DeniedBurstV8>),
    /// `rate` state of state format 7 (before held episodes). It carries over: see
    /// [`rate::State`]'s `From<RateV7>`.
    RetiredRateV7(Box<retired::RateV7>),
    /// `volume` state of state formats 7 to 10 (before it counted every transfer of a
    /// pending episode). It carries over: see [`volume::State`]'s `From<VolumeV10>`.
    RetiredVolumeV10(Box<retired::VolumeV10>),
    /// `rate` state of state formats 8 and 9 (before the count of one kind of call).
    /// It carries over: see [`rate::State`]'s `From<RateV9>`.
    RetiredRateV9(Box<retired::RateV9>),
    /// `denied_burst` state of state formats 9 to 12 (before failures of routine calls
    /// were counted apart). It carries over: see [`denied_burst::State`]'s
    /// `From<DeniedBurstV12>`.
    RetiredDeniedBurstV12(Box<retired::DeniedBurstV12>),
    /// See [`rate`].
    Rate(Box<rate::State>),
    /// `volume` state of state format 11 (before each system's sizes kept their
    /// spread). It carries over: see [`volume::State`]'s `From<VolumeV11>`.
    RetiredVolumeV11(Box<retired::VolumeV11>),
    /// `volume` state of state formats 12 and 13 (before each system kept its run of
    /// transfers). It carries over: see [`volume::State`]'s `From<VolumeV13>`.
    RetiredVolumeV13(Box<retired::VolumeV13>),
    /// See [`denied_burst`].
    DeniedBurst(Box<denied_burst::State>),
    /// See [`volume`].
    Volume(Box<volume::State>),
}

impl KindState {
    /// True if the state holds events waiting to be decided later (see
    /// [`crate::approvals`]): the engine keeps such agents in a small index so that it
    /// can release them when their approval arrives or their wait ends.
    pub fn holds_events(&self) -> bool {
        matches!(self, KindState::HighRiskAction(ledger) if ledger.is_holding())
    }
}

/// Typed access to one variant of [`KindState`].
///
/// If a slot holds another kind's state (an instance id was reused for a different kind
/// after a configuration change), the slot is reset to a fresh state of the right kind:
/// the old numbers mean nothing to the new detector.
pub trait KindStateOf: Default + Sized {
    /// Wraps a state.
    fn wrap(self) -> KindState;
    /// Unwraps, if `state` is this kind's.
    fn project(state: &mut KindState) -> Option<&mut Self>;
    /// This kind's state carried over from a retired shape of it, if it can be.
    fn upgrade(_retired: &KindState) -> Option<Self> {
        None
    }
    /// The typed state, upgrading a retired shape of it, or resetting the slot if it
    /// held another kind's state. Called by every detector on every event, and almost
    /// always the slot holds its kind: inlined, that is one comparison.
    #[inline]
    fn of(state: &mut KindState) -> &mut Self {
        if Self::project(state).is_none() {
            Self::reset(state);
        }
        match Self::project(state) {
            Some(typed) => typed,
            None => unreachable!("the slot was just reset to this kind"),
        }
    }

    /// Replaces a slot that holds another shape with this kind's state (upgraded from a
    /// retired shape of it where possible); the rare path of [`KindStateOf::of`].
    #[cold]
    fn reset(state: &mut KindState) {
        *state = Self::upgrade(state).unwrap_or_default().wrap();
    }
}

macro_rules! kind_state_of {
    ($variant:ident, $state:ty) => {
        impl KindStateOf for $state {
            fn wrap(self) -> KindState {
                KindState::$variant(self)
            }
            #[inline]
            fn project(state: &mut KindState) -> Option<&mut Self> {
                match state {
                    KindState::$variant(typed) => Some(typed),
                    _ => None,
                }
            }
        }
    };
}

kind_state_of!(NewSystem, new_system::State);

/// Boxed states: the larger kinds live behind one pointer so that a slot stays small
/// for agents that never use them.
macro_rules! boxed_kind_state_of {
    ($variant:ident, $state:ty) => {
        boxed_kind_state_of!(@impl $variant, $state, {});
    };
    // A kind whose retired variants carry over whole (`From<retired> for $state`).
    ($variant:ident, $state:ty, upgrades $($retired:ident),+) => {
        boxed_kind_state_of!(@impl $variant, $state, {
            fn upgrade(retired: &KindState) -> Option<Self> {
                match retired {
                    $(KindState::$retired(old) => Some(<$state>::from(old.as_ref().clone())),)+
                    _ => None,
                }
            }
        });
    };
    (@impl $variant:ident, $state:ty, { $($upgrade:item)? }) => {
        impl KindStateOf for $state {
            fn wrap(self) -> KindState {
                KindState::$variant(Box::new(self))
            }
            #[inline]
            fn project(state: &mut KindState) -> Option<&mut Self> {
                match state {
                    KindState::$variant(typed) => Some(typed),
                    _ => None,
                }
            }
            $($upgrade)?
        }
    };
}

boxed_kind_state_of!(
    Volume,
    volume::State,
    upgrades RetiredVolumeV6,
    RetiredVolumeV10,
    RetiredVolumeV11,
    RetiredVolumeV13
);
boxed_kind_state_of!(Rate, rate::State, upgrades RetiredRateV7, RetiredRateV9);
boxed_kind_state_of!(HighRiskAction, crate::approvals::Ledger);
boxed_kind_state_of!(
    DeniedBurst,
    denied_burst::State,
    upgrades RetiredDeniedBurstV8,
    RetiredDeniedBurstV12
);

/// A list of names for summaries: `crm, email` (or `nothing`).
pub(crate) fn format_list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

use serde::Deserializer;

use crate::model::time::parse_positive_duration_ms;

/// A duration parameter written as text (`10m`, `1h`, `14d`), validated at load time so
/// that a typo is reported with its file and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationParam(pub i64);

impl<'de> Deserialize<'de> for DurationParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match parse_positive_duration_ms(&text) {
            Some(ms) => Ok(DurationParam(ms)),
            None => Err(serde::de::Error::custom(format!(
                "{text:?} is not a positive duration like 30s, 10m, 1h or 14d"
            ))),
        }
    }
}

/// A strictly positive, finite number parameter (a ratio, a prior, a spread).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positive(pub f64);

/// A multiplier in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

/// Reads a number and rejects it, with `requirement` in the message, unless `accept`s it.
fn bounded<'de, D: Deserializer<'de>>(
    deserializer: D,
    accept: fn(f64) -> bool,
    requirement: &str,
) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if accept(value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "{value} must be {requirement}"
        )))
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bounded(
            deserializer,
            |v| v.is_finite() && v > 0.0,
            "a positive number",
        )
        .map(Positive)
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bounded(deserializer, |v| v > 0.0 && v <= 1.0, "in (0, 1]").map(Fraction)
    }
}

/// Human-readable byte counts for summaries (`3.2 MB`).
pub(crate) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A coarse age for summaries (`under a minute`, `37m`, `5h`, `9d`).
pub(crate) fn format_age(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match minutes {
        0 => "under a minute".into(),
        1..=119 => format!("{minutes}m"),
        120..=2879 => format!("{}h", minutes / 60),
        _ => format!("{}d", minutes / 1440),
    }
}

/// A p-value in scientific notation for summaries (`p = 3.1e-12`).
pub(crate) fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.1e}")
    }
}

/// Drives one detector by hand in unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::baseline::{Baseline, PendingBaseline};
    use crate::detect::{Detector, Identity, KindState, Observation, Verdict};
    use crate::model::{decode_event, Limits};

    /// One call by agent `a` at `time_ms`: `action` on `system` moving `bytes`, with
    /// `outcome`, as a JSON line.
    pub fn call_line(
        time_ms: i64,
        action: &str,
        system: &str,
        bytes: u64,
        outcome: &str,
    ) -> String {
        format!(
            r#"{{"event_id":"e","time":{time_ms},"agent_id":"a","action":"{action}","system":"{system}","bytes_out":{bytes},"outcome":"{outcome}"}}"#
        )
    }

    /// Counts the event of JSON `line` into `baseline` and learns it, as the engine
    /// does with an event no detector flagged.
    pub fn learn_line(baseline: &mut Baseline, line: &str) {
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        baseline.count(&event);
        baseline.learn(&event);
    }

    /// Scores the event of JSON `line` against the shared `baseline` (then learns it as
    /// normal); returns the finding.
    pub fn score_against(
        detector: &dyn Detector,
        state: &mut KindState,
        line: &str,
        baseline: &Baseline,
    ) -> Option<crate::detect::Finding> {
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        let pending = PendingBaseline::default();
        let obs = Observation {
            event: &event,
            baseline,
            pending: &pending,
            identity: Identity::default(),
        };
        let finding = detector.score(&obs, state);
        detector.learn(&obs, state, Verdict::Normal);
        finding
    }

    /// Scores the event of JSON `line` (an agent with an empty shared baseline), then
    /// learns it with `verdict`; returns the finding's p-value.
    pub fn score_and_learn(
        detector: &dyn Detector,
        state: &mut KindState,
        line: &str,
        verdict: Verdict,
    ) -> Option<f64> {
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        let (baseline, pending) = (Baseline::default(), PendingBaseline::default());
        let obs = Observation {
            event: &event,
            baseline: &baseline,
            pending: &pending,
            identity: Identity::default(),
        };
        let p = detector.score(&obs, state).map(|f| f.p_value);
        detector.learn(&obs, state, verdict);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `state` as a record of this build reads it back, checked to be unchanged.
    fn stored_and_read(state: &KindState) -> KindState {
        let bytes = postcard::to_stdvec(state).unwrap();
        let read: KindState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&read, state);
        read
    }

    #[test]
    fn bytes_and_p_values_read_well() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(3_200_000.0), "3.2 MB");
        assert_eq!(format_p(0.02), "p = 0.020");
        assert_eq!(format_p(3.1e-12), "p = 3.1e-12");
        assert_eq!(format_age(30_000), "under a minute");
        assert_eq!(format_age(3 * 86_400_000), "3d");
    }

    #[test]
    fn a_slot_of_another_kind_is_reset() {
        let mut state = rate::State::default().wrap();
        let _ = volume::State::of(&mut state);
        assert!(matches!(state, KindState::Volume(_)));
    }

    #[test]
    fn a_retired_state_decodes_and_is_reset_on_use() {
        let old = KindState::RetiredRate(Box::new(retired::RateV2 {
            windows: crate::stats::EwStats::default(),
            window: TumblingWindow::default(),
        }));
        let mut state = stored_and_read(&old);
        assert_eq!(*rate::State::of(&mut state), rate::State::default());
    }

    /// A few transfers' sizes, as a volume state of any format holds them.
    fn some_transfer_sizes() -> (crate::stats::LogHistogram, crate::stats::EwStats) {
        let mut sizes = crate::stats::LogHistogram::default();
        sizes.record_ln(9.0);
        let transfers = crate::stats::EwStats {
            n: 40,
            mean: 9.0,
            var: 1.0,
        };
        (sizes, transfers)
    }

    #[test]
    fn a_format_6_volume_state_carries_over() {
        let (sizes, transfers) = some_transfer_sizes();
        let old = KindState::RetiredVolumeV6(Box::new(retired::VolumeV6 {
            transfers,
            sizes: sizes.clone(),
            ..Default::default()
        }));
        let mut state = stored_and_read(&old);
        let upgraded = volume::State::of(&mut state);
        assert_eq!(
            (upgraded.transfers, &upgraded.sizes),
            (transfers.into(), &sizes)
        );
    }

    /// The `volume` state a stored retired `old` upgrades to, checked to keep the
    /// sizes of [`some_transfer_sizes`] and an open window's peak of 7.
    fn upgraded_volume(old: &KindState) -> volume::State {
        let (sizes, transfers) = some_transfer_sizes();
        let mut state = stored_and_read(old);
        let upgraded = volume::State::of(&mut state).clone();
        assert_eq!(
            (upgraded.transfers, &upgraded.sizes),
            (transfers.into(), &sizes)
        );
        assert_eq!(upgraded.window_peak, 7.0);
        upgraded
    }

    #[test]
    fn a_format_10_volume_state_carries_over_with_no_episode_counted() {
        let (sizes, transfers) = some_transfer_sizes();
        let old = KindState::RetiredVolumeV10(Box::new(retired::VolumeV10 {
            transfers,
            sizes,
            window_peak: 7.0,
            ..Default::default()
        }));
        assert_eq!(upgraded_volume(&old).episode, None);
    }

    #[test]
    fn a_format_11_volume_state_carries_over_with_its_episode() {
        let (sizes, transfers) = some_transfer_sizes();
        let episode = crate::stats::CompactStats::default();
        let old = KindState::RetiredVolumeV11(Box::new(retired::VolumeV11 {
            transfers,
            sizes,
            window_peak: 7.0,
            episode: Some(episode),
            ..Default::default()
        }));
        assert_eq!(upgraded_volume(&old).episode, Some(episode));
    }

    #[test]
    fn a_format_13_volume_state_carries_over_whole() {
        let (sizes, transfers) = some_transfer_sizes();
        let episode = crate::stats::CompactStats::default();
        let old = KindState::RetiredVolumeV13(Box::new(retired::VolumeV13 {
            transfers: transfers.into(),
            sizes,
            window_peak: 7.0,
            episode: Some(episode),
            ..Default::default()
        }));
        assert_eq!(upgraded_volume(&old).episode, Some(episode));
    }

    #[test]
    fn a_format_7_rate_state_carries_over() {
        let mut tails: [crate::stats::CountDistribution; 3] = Default::default();
        tails[1].record(12, 2_000);
        let mut stats: [crate::stats::EwStats; 3] = Default::default();
        stats[1].update(12.0, 2_000);
        let old = KindState::RetiredRateV7(Box::new(retired::RateV7 {
            tails: tails.clone(),
            stats,
            latest: [3, 20, 90],
            ..Default::default()
        }));
        let mut state = stored_and_read(&old);
        let upgraded = rate::State::of(&mut state);
        assert_eq!(&upgraded.tails[..2], &tails[..2]);
        assert_eq!(upgraded.stats[1].widen(), stats[1]);
    }

    #[test]
    fn a_format_9_rate_state_carries_over_without_its_hour_window() {
        let mut tails: [crate::stats::CountDistribution; 3] = Default::default();
        tails[0].record(4, 2_000);
        tails[2].record(40, 2_000);
        let mut held = retired::RateHeldV9::default();
        held.since_ms[0] = 7;
        held.counts[0].record(30, 2_000);
        let old = KindState::RetiredRateV9(Box::new(retired::RateV9 {
            tails: tails.clone(),
            latest: [3, 20, 90],
            held: Some(Box::new(held.clone())),
            ..Default::default()
        }));
        let mut state = stored_and_read(&old);
        let upgraded = rate::State::of(&mut state);
        assert_eq!(&upgraded.tails[..2], &tails[..2]);
        assert!(
            upgraded.tails[2].is_empty(),
            "the hour's counts are not the kind's"
        );
        assert!(upgraded.held.is_some(), "the held episode carries over");
    }

    #[test]
    fn a_format_8_denied_burst_state_keeps_its_failure_rate() {
        let old = KindState::RetiredDeniedBurstV8(Box::new(retired::DeniedBurstV8 {
            calls: 900.0,
            failures: 18.0,
            clustering: -40.0,
            clustering_calls: 800.0,
            ..Default::default()
        }));
        let mut state = stored_and_read(&old);
        let upgraded = denied_burst::State::of(&mut state);
        assert_eq!((upgraded.calls, upgraded.failures), (900.0, 18.0));
        assert_eq!(upgraded.evidence, 0.0);
    }

    #[test]
    fn a_format_12_denied_burst_state_carries_over_whole() {
        let window = TumblingWindow {
            start_ms: 60_000,
            events: 7,
            sum: 3.0,
            flagged: true,
        };
        let old = KindState::RetiredDeniedBurstV12(Box::new(retired::DeniedBurstV12 {
            calls: 900.0,
            failures: 18.0,
            evidence: -4.5,
            window,
            escalated: true,
        }));
        let mut state = stored_and_read(&old);
        let upgraded = denied_burst::State::of(&mut state);
        let expected = denied_burst::State {
            calls: 900.0,
            failures: 18.0,
            evidence: -4.5,
            window,
            escalated: true,
            routine_failures: 0,
        };
        assert_eq!(*upgraded, expected);
    }

    #[test]
    fn every_variant_keeps_the_index_stored_records_carry() {
        // Postcard stores a variant by its index: a stored agent decodes only if each
        // kind's state keeps the index its format wrote, a retired shape taking over
        // its predecessor's (format 12 wrote `denied_burst` at 13, which
        // `RetiredDeniedBurstV12` holds now; format 13 wrote `volume` at 16, which
        // `RetiredVolumeV13` holds now) and new shapes going to the end.
        let variants = [
            (KindState::Stateless, 3),
            (KindState::RetiredVolumeV6(Box::default()), 5),
            (KindState::RetiredRateV5(Box::default()), 6),
            (new_system::State::default().wrap(), 7),
            (KindState::HighRiskAction(Box::default()), 8),
            (KindState::RetiredDeniedBurstV8(Box::default()), 9),
            (KindState::RetiredRateV7(Box::default()), 10),
            (KindState::RetiredVolumeV10(Box::default()), 11),
            (KindState::RetiredRateV9(Box::default()), 12),
            (KindState::RetiredDeniedBurstV12(Box::default()), 13),
            (rate::State::default().wrap(), 14),
            (KindState::RetiredVolumeV11(Box::default()), 15),
            (KindState::RetiredVolumeV13(Box::default()), 16),
            (denied_burst::State::default().wrap(), 17),
            (volume::State::default().wrap(), 18),
        ];
        for (state, index) in variants {
            let bytes = postcard::to_stdvec(&state).unwrap();
            assert_eq!(bytes[0], index, "{state:?}");
        }
    }

    #[test]
    fn a_format_5_rate_state_decodes_and_is_reset_on_use() {
        let old = KindState::RetiredRateV5(Box::new(retired::RateV5 {
            latest: [3, 20, 90],
            ..Default::default()
        }));
        let mut state = stored_and_read(&old);
        assert_eq!(*rate::State::of(&mut state), rate::State::default());
    }
}
