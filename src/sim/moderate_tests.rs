//! Each moderate attack shows in the generated traffic as its label says, at the size
//! and pace the brief gives, on its own victim, after the victim's first four days.

use std::collections::{BTreeMap, BTreeSet};

use super::moderate::{MODERATE, RUNAWAY_FACTOR, SLOW_PACE};
use super::test_support::{by_agent, bytes, median, ms, simulation};
use super::{AttackKind, PlannedAttack, Profile, Simulation};
use crate::model::time::DAY_MS;

const TEN_MINUTES: i64 = 600_000;

fn moderate() -> Simulation {
    simulation(100, 14, 21, "moderate")
}

fn attacks(sim: &Simulation, kind: AttackKind) -> Vec<&PlannedAttack> {
    sim.attacks().iter().filter(|a| a.kind == kind).collect()
}

#[test]
fn every_kind_on_its_own_victim_after_four_days() {
    let sim = moderate();
    let labels = sim.labels();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for label in &labels {
        *per_kind.entry(label.kind.clone()).or_default() += 1;
        assert!(ms(&label.start) >= sim.start_ms() + 4 * DAY_MS, "{label:?}");
        assert!(ms(&label.end) < sim.end_ms(), "{label:?}");
        assert_eq!(label.detector, None);
    }
    let expected: BTreeMap<String, usize> = [
        "moderate_exfiltration",
        "moderate_runaway",
        "peer_system_access",
        "slow_exfiltration",
    ]
    .map(|k| (k.to_owned(), 10))
    .into();
    assert_eq!(per_kind, expected);
    let victims: BTreeSet<&str> = labels.iter().map(|l| l.agent_id.as_str()).collect();
    assert_eq!(victims.len(), labels.len(), "victims are distinct");
}

#[test]
fn moderate_victims_are_not_the_strong_attacks_victims() {
    let sim = simulation(100, 14, 22, "strong,moderate");
    let strong: BTreeSet<usize> = sim
        .attacks()
        .iter()
        .filter(|a| !MODERATE.contains(&a.kind))
        .map(|a| a.agent)
        .collect();
    let moderate: Vec<usize> = sim
        .attacks()
        .iter()
        .filter(|a| MODERATE.contains(&a.kind))
        .map(|a| a.agent)
        .collect();
    assert!(!strong.is_empty() && moderate.len() >= 30);
    assert!(moderate.iter().all(|a| !strong.contains(a)));
}

#[test]
fn moderate_exfiltration_is_15_to_40_transfers_of_8_to_20_times_typical_in_10_minutes() {
    let sim = moderate();
    let agents = by_agent(&sim);
    for attack in attacks(&sim, AttackKind::ModerateExfiltration) {
        let spec = &sim.agents()[attack.agent];
        assert!((15..=40).contains(&attack.calls.len()));
        assert!(attack.end_ms() - attack.start_ms() < TEN_MINUTES);
        let typical = spec.typical_bytes();
        for call in &attack.calls {
            let ratio = call.bytes_in as f64 / typical;
            assert!((7.99..=20.0).contains(&ratio), "{ratio}");
            let seen = agents[&spec.id]
                .iter()
                .any(|(t, e)| *t == call.time_ms && e.bytes_in == call.bytes_in);
            assert!(seen, "call at {} not in the traffic", call.time_ms);
        }
    }
}

#[test]
fn slow_exfiltration_triples_every_transfer_for_two_to_six_hours() {
    let sim = moderate();
    let agents = by_agent(&sim);
    let mut ratios = Vec::new();
    for attack in attacks(&sim, AttackKind::SlowExfiltration) {
        let spec = &sim.agents()[attack.agent];
        assert!(attack.calls.is_empty());
        let (start, end) = attack.inflated.unwrap();
        assert!((2 * 3_600_000..=6 * 3_600_000).contains(&(end - start)));
        let events = &agents[&spec.id];
        let inside: Vec<u64> = events
            .iter()
            .filter(|(t, _)| (start..=end).contains(t))
            .map(|(_, e)| bytes(e))
            .collect();
        let outside: Vec<u64> = events
            .iter()
            .filter(|(t, _)| !(start..=end).contains(t))
            .map(|(_, e)| bytes(e))
            .collect();
        assert!(inside.len() >= 10, "{} events inside", inside.len());
        ratios.push(median(inside) / median(outside));
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!((2.5..3.5).contains(&mean), "{ratios:?}");
}

#[test]
fn moderate_runaway_runs_at_five_times_the_agents_own_pace_slow_agents_included() {
    let sim = moderate();
    let agents = by_agent(&sim);
    let (mut observed, mut usual) = (0.0, 0.0);
    let mut slow = 0;
    for attack in attacks(&sim, AttackKind::ModerateRunaway) {
        let spec = &sim.agents()[attack.agent];
        let at = attack.start_ms();
        let window = at..at + TEN_MINUTES;
        observed += agents[&spec.id]
            .iter()
            .filter(|(t, _)| window.contains(t))
            .count() as f64;
        usual += (0..10)
            .map(|m| sim.dynamics.rate_at(spec, at + m * 60_000))
            .sum::<f64>();
        slow += usize::from(spec.per_minute < SLOW_PACE);
        let systems: BTreeSet<&str> = attack.calls.iter().map(|c| c.system.as_str()).collect();
        assert_eq!(systems.len(), 1, "one loop");
    }
    let factor = observed / usual;
    assert!(
        (RUNAWAY_FACTOR - 1.0..RUNAWAY_FACTOR + 1.0).contains(&factor),
        "{observed} calls vs {usual} usual"
    );
    assert!(slow >= 5, "{slow} slow victims");
    let bots = attacks(&sim, AttackKind::ModerateRunaway)
        .iter()
        .filter(|a| sim.agents()[a.agent].profile == Profile::AlwaysOnBot)
        .count();
    assert!(bots >= 1);
}

#[test]
fn peer_system_access_touches_a_system_others_use_and_the_victim_never_did() {
    let sim = moderate();
    let agents = by_agent(&sim);
    for attack in attacks(&sim, AttackKind::PeerSystemAccess) {
        let spec = &sim.agents()[attack.agent];
        let system = &attack.calls[0].system;
        assert!((3..=8).contains(&attack.calls.len()));
        assert!(attack.calls.iter().all(|c| &c.system == system));
        let before = agents[&spec.id]
            .iter()
            .filter(|(t, _)| *t < attack.start_ms())
            .all(|(_, e)| &e.system != system);
        assert!(before, "{} used {system} before", spec.id);
        let others = agents
            .iter()
            .filter(|(id, _)| **id != spec.id)
            .any(|(_, events)| events.iter().any(|(_, e)| &e.system == system));
        assert!(others, "nobody else uses {system}");
    }
}
