//! Each legitimate change shows in the generated traffic as its changes record says.

use std::collections::BTreeSet;

use super::test_support::{by_agent, bytes, hours_of_day, median, ms, simulation, time_of};
use super::{Change, ChangeKind, Profile, Simulation, ROLLOUT_SYSTEM};
use crate::model::time::{DAY_MS, HOUR_MS};
use crate::model::{AgentEventV1, Outcome};

fn records(sim: &Simulation, kind: ChangeKind) -> Vec<&Change> {
    sim.changes()
        .iter()
        .filter(|c| c.kind == kind.name())
        .collect()
}

#[test]
fn a_steady_scenario_changes_nothing() {
    assert!(simulation(30, 14, 1, "strong").changes().is_empty());
    assert!(simulation(30, 14, 1, "moderate").changes().is_empty());
}

#[test]
fn changes_are_never_labelled() {
    let sim = simulation(60, 21, 2, "change");
    let kinds: BTreeSet<String> = sim.changes().iter().map(|c| c.kind.clone()).collect();
    let expected: BTreeSet<String> = ChangeKind::ALL
        .iter()
        .map(|k| k.name().to_owned())
        .collect();
    assert_eq!(kinds, expected);
    let labelled: BTreeSet<String> = sim.labels().into_iter().map(|l| l.kind).collect();
    let strong =
        BTreeSet::from(["exfiltration", "first_access", "runaway_loop"].map(str::to_owned));
    assert_eq!(labelled, strong);
}

#[test]
fn rollout_reaches_sixty_percent_of_agents_and_stays_in_their_mix() {
    let sim = simulation(80, 10, 5, "rollout");
    let [rollout] = records(&sim, ChangeKind::Rollout)[..] else {
        panic!("one rollout expected: {:?}", sim.changes())
    };
    assert_eq!(rollout.system.as_deref(), Some(ROLLOUT_SYSTEM));
    assert_eq!(rollout.agents.len(), 48, "60% of 80");
    let (start, end) = (ms(&rollout.start), ms(rollout.end.as_deref().unwrap()));
    assert!(end - start <= 4 * HOUR_MS && end > start);
    let mut users = BTreeSet::new();
    let mut after = (0u64, 0u64);
    for (agent, events) in by_agent(&sim) {
        for (t, event) in &events {
            if event.system == ROLLOUT_SYSTEM {
                assert!(*t >= start, "{agent} used it before the rollout");
                users.insert(agent.clone());
            }
            if *t > end + DAY_MS && rollout.agents.contains(&agent) {
                after.0 += u64::from(event.system == ROLLOUT_SYSTEM);
                after.1 += 1;
            }
        }
    }
    let adopters: BTreeSet<String> = rollout.agents.iter().cloned().collect();
    assert_eq!(users, adopters);
    let share = after.0 as f64 / after.1 as f64;
    assert!((0.1..0.3).contains(&share), "share {share}");
    let registry = sim.registry();
    for record in &registry {
        let granted = record
            .allowed_systems
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == ROLLOUT_SYSTEM));
        assert_eq!(granted, adopters.contains(&record.agent_id));
    }
}

#[test]
fn an_outage_fails_every_call_to_its_system_and_callers_retry() {
    let sim = simulation(80, 10, 6, "outage");
    let [outage] = records(&sim, ChangeKind::Outage)[..] else {
        panic!("one outage expected: {:?}", sim.changes())
    };
    let system = outage.system.clone().unwrap();
    let (start, end) = (ms(&outage.start), ms(outage.end.as_deref().unwrap()));
    assert_eq!(end - start, 90 * 60_000);
    // The same 90 minutes on the previous weekday, for comparison.
    let day = (start - sim.start_ms()).div_euclid(DAY_MS);
    let back = (if day % 7 == 0 { 3 } else { 1 }) * DAY_MS;
    let (mut during, mut before, mut callers) = (0u64, 0u64, BTreeSet::new());
    for event in sim.events() {
        let t = time_of(&event);
        if event.system != system {
            continue;
        }
        if (start..end).contains(&t) {
            assert!(
                matches!(event.outcome, Some(Outcome::Failure | Outcome::Denied)),
                "{event:?}"
            );
            assert!(outage.agents.contains(&event.agent_id));
            during += 1;
            callers.insert(event.agent_id.clone());
        } else if (start - back..end - back).contains(&t) {
            before += 1;
        }
    }
    assert!(callers.len() >= 5, "{callers:?}");
    // Retries add about (0.6 + 0.36 + 0.22) calls per failed call.
    let ratio = during as f64 / before as f64;
    assert!((1.6..3.0).contains(&ratio), "{during} vs {before}");
}

/// Events per active day and median size, before and after `at`.
fn pace_and_size(events: &[(i64, AgentEventV1)], at: i64) -> [(f64, f64); 2] {
    [false, true].map(|later| {
        let chosen: Vec<_> = events.iter().filter(|(t, _)| (*t >= at) == later).collect();
        let days: BTreeSet<i64> = chosen.iter().map(|(t, _)| t.div_euclid(DAY_MS)).collect();
        let pace = chosen.len() as f64 / days.len().max(1) as f64;
        (pace, median(chosen.iter().map(|(_, e)| bytes(e)).collect()))
    })
}

#[test]
fn a_job_change_doubles_pace_and_triples_sizes() {
    let sim = simulation(100, 14, 7, "job_change");
    let changed = records(&sim, ChangeKind::JobChange);
    assert_eq!(changed.len(), 8, "8% of 100");
    let agents = by_agent(&sim);
    let (mut pace, mut size) = (Vec::new(), Vec::new());
    for change in changed {
        let [before, after] = pace_and_size(&agents[&change.agents[0]], ms(&change.start));
        pace.push(after.0 / before.0);
        size.push(after.1 / before.1);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!((1.7..2.3).contains(&mean(&pace)), "pace ratios {pace:?}");
    assert!((2.5..3.5).contains(&mean(&size)), "size ratios {size:?}");
    assert!(size.iter().all(|r| (1.8..5.0).contains(r)), "{size:?}");
}

/// UTC hours of the day in which `events` fall, before and after `at`.
fn hours_around(sim: &Simulation, events: &[(i64, AgentEventV1)], at: i64) -> [BTreeSet<i64>; 2] {
    [false, true].map(|later| hours_of_day(sim, events.iter().filter(|(t, _)| (*t >= at) == later)))
}

fn shifted(hours: &BTreeSet<i64>, by: i64) -> BTreeSet<i64> {
    hours.iter().map(|h| (h + by).rem_euclid(24)).collect()
}

#[test]
fn a_shift_change_moves_the_working_day_three_hours_later() {
    let sim = simulation(100, 14, 8, "shift_change");
    let changed = records(&sim, ChangeKind::ShiftChange);
    assert_eq!(changed.len(), 3, "3% of 100");
    let agents = by_agent(&sim);
    for change in changed {
        let [before, after] = hours_around(&sim, &agents[&change.agents[0]], ms(&change.start));
        assert_eq!(before.len(), 10, "{before:?}");
        assert_eq!(after, shifted(&before, 3), "{change:?}");
    }
}

#[test]
fn daylight_saving_moves_office_hours_one_hour_earlier_in_utc_in_its_zones_only() {
    let sim = simulation(100, 14, 9, "dst");
    let [dst] = records(&sim, ChangeKind::Dst)[..] else {
        panic!("one clock change expected: {:?}", sim.changes())
    };
    let at = ms(&dst.start);
    assert_eq!(
        (at - sim.start_ms()) % (7 * DAY_MS),
        6 * DAY_MS + HOUR_MS,
        "Sunday 01:00"
    );
    let agents = by_agent(&sim);
    let mut moved = 0;
    for spec in sim.agents() {
        if spec.profile != Profile::OfficeAssistant {
            continue;
        }
        let [before, after] = hours_around(&sim, &agents[&spec.id], at);
        let in_zone = dst.agents.contains(&spec.id);
        assert_eq!(in_zone, (0..=2).contains(&spec.utc_offset_h));
        let expected = if in_zone {
            shifted(&before, -1)
        } else {
            before
        };
        assert_eq!(after, expected, "{}", spec.id);
        moved += usize::from(in_zone);
    }
    assert!(moved >= 5, "{moved}");
}

#[test]
fn joiners_start_after_day_five_and_retirees_stop() {
    let sim = simulation(100, 14, 10, "joiners,retire");
    let agents = by_agent(&sim);
    let joiners = records(&sim, ChangeKind::Joiners);
    assert_eq!(joiners.len(), 5, "5% of 100");
    for change in joiners {
        let at = ms(&change.start);
        assert!(at >= sim.start_ms() + 5 * DAY_MS);
        let events = &agents[&change.agents[0]];
        assert!(!events.is_empty(), "{change:?}");
        assert!(events[0].0 >= at, "{change:?}");
    }
    let retired = records(&sim, ChangeKind::Retire);
    assert_eq!(retired.len(), 2, "2% of 100");
    for change in retired {
        let at = ms(&change.start);
        let events = &agents[&change.agents[0]];
        assert!(events.iter().any(|(t, _)| *t < at - DAY_MS), "{change:?}");
        assert!(events.iter().all(|(t, _)| *t < at), "{change:?}");
        let joined = records(&sim, ChangeKind::Joiners);
        assert!(joined.iter().all(|j| j.agents != change.agents));
    }
}
