//! Legitimate change becomes normal: rollouts, outages, new jobs and policy findings
//! must not make healthy agents alert forever, and never cost them their credentials.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agentwatch::model::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use agentwatch::model::{AgentEventV1, Alert, CommandAction, Outcome};
use agentwatch::pipeline::{Engine, Outputs};
use common::{by_detector, calls, engine, event, monday, office_agent, run};

/// Events of `agents` office agents (`office-0`, ...) over `days` days, merged in time
/// order.
fn fleet(agents: usize, days: i64, per_hour: i64) -> Vec<AgentEventV1> {
    let mut events: Vec<AgentEventV1> = (0..agents)
        .flat_map(|i| {
            office_agent(
                &format!("office-{i}"),
                days,
                per_hour,
                &["crm", "mail", "docs"],
                20_000,
            )
        })
        .collect();
    sort(&mut events);
    events
}

fn sort(events: &mut [AgentEventV1]) {
    events.sort_by_key(event_ms);
}

/// An event's time in milliseconds; the tests write only valid times.
fn event_ms(e: &AgentEventV1) -> i64 {
    match &e.time {
        agentwatch::model::EventTime::Rfc3339(t) => {
            agentwatch::model::time::parse_rfc3339(t).expect("a test event's time is valid")
        }
        agentwatch::model::EventTime::EpochMillis(ms) => *ms,
    }
}

/// Fails unless every command asks for approval: healthy agents must never have a
/// credential revoked or be suspended.
fn assert_only_approvals(out: &Outputs, why: &str) {
    assert!(
        out.commands
            .iter()
            .all(|c| c.action == CommandAction::RequireApproval),
        "{why}: {:#?}",
        out.commands
    );
}

#[test]
fn a_rollout_to_the_fleet_is_one_fleet_alert_and_no_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let warm = fleet(30, 11, 20);
    let quiet = run(&mut engine, &warm);
    assert!(quiet.alerts.is_empty(), "{:?}", quiet.alerts);
    // Day 14 (a Monday): every agent starts using ai.gateway, a few calls an hour, for
    // a week of working days.
    let mut events = Vec::new();
    for day in 14..19 {
        for i in 0..30 {
            for hour in 9..17 {
                let t = monday() + day * DAY_MS + hour * HOUR_MS + i as i64 * MINUTE_MS;
                let agent = format!("office-{i}");
                let id = (day * 10_000 + i as i64 * 100 + hour) as u64;
                events.push(event(id, &agent, t, "read", "crm", 20_000));
                events.push(event(
                    id + 50,
                    &agent,
                    t + 30_000,
                    "invoke",
                    "ai.gateway",
                    20_000,
                ));
            }
        }
    }
    sort(&mut events);
    let out = run(&mut engine, &events);
    let fleet_alerts: Vec<_> = out.alerts.iter().filter(|a| a.fleet.is_some()).collect();
    assert_eq!(fleet_alerts.len(), 1, "{:#?}", out.alerts);
    let fleet = fleet_alerts[0].fleet.as_ref().unwrap();
    assert_eq!(fleet.system, "ai.gateway");
    assert_eq!(fleet.pattern, "first_use");
    assert!(fleet.agents >= 3 && !fleet.sample_agents.is_empty());
    assert!(fleet_alerts[0].commands.is_empty());
    // Only the agents that adopted it before it was known to be fleet-wide alert on
    // their own, and none is answered with a revoked credential or a suspension.
    let individual = by_detector(&out.alerts, "new_system").len() - 1;
    assert!(
        individual <= 2,
        "{individual} per-agent alerts: {:#?}",
        out.alerts
    );
    assert_only_approvals(&out, "healthy agents keep their credentials");
    // After a few distinct hours the system is learned: the agent's baseline knows it.
    let state = engine.agent("office-29").unwrap().unwrap();
    assert!(state.baseline.systems.get("ai.gateway").is_some());
}

#[test]
fn one_agent_adopting_a_new_system_alerts_once_and_then_learns_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let warm = office_agent("billing", 14, 40, &["billing", "crm", "mail"], 8_000);
    run(&mut engine, &warm);
    let mut events = Vec::new();
    for day in 14..18 {
        for hour in 9..17 {
            let t = monday() + day * DAY_MS + hour * HOUR_MS;
            let id = (day * 100 + hour) as u64 + 900_000;
            events.push(event(id, "billing", t, "read", "billing", 8_000));
            events.push(event(
                id + 50,
                "billing",
                t + MINUTE_MS,
                "read",
                "iam.sso",
                8_000,
            ));
        }
    }
    let out = run(&mut engine, &events);
    let alerts = by_detector(&out.alerts, "new_system");
    assert_eq!(alerts.len(), 1, "{:#?}", out.alerts);
    assert_eq!(alerts[0].evidence.context["baseline"], "anomalous");
    let state = engine.agent("billing").unwrap().unwrap();
    assert!(
        state.baseline.systems.get("iam.sso").is_some(),
        "used in many distinct hours, the system joins the baseline"
    );
}

/// The events of `worker`, an office agent over `days` days, from `from_ms` on, at
/// `per_hour` calls an hour moving about `bytes` each (ids prefixed so they do not
/// repeat the warm-up's).
fn office_agent_from(from_ms: i64, days: i64, per_hour: i64, bytes: u64) -> Vec<AgentEventV1> {
    office_agent("worker", days, per_hour, &["crm", "mail"], bytes)
        .into_iter()
        .filter(|e| event_ms(e) >= from_ms)
        .map(|mut e| {
            e.event_id = format!("changed-{}", e.event_id);
            e
        })
        .collect()
}

#[test]
fn a_job_change_alerts_only_on_its_first_day_and_never_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let warm = office_agent("worker", 14, 30, &["crm", "mail"], 10_000);
    run(&mut engine, &warm);
    // From day 14 on: twice the pace, three times the transfer sizes, for good.
    let out = run(
        &mut engine,
        &office_agent_from(monday() + 14 * DAY_MS, 28, 60, 30_000),
    );
    // The change is news for a few hours (one alert per detector per cooldown hour at
    // most, while the pending model gathers it), then it is learned: a sustained new
    // pace or size becomes normal within a day (issue 9).
    let changed_at = monday() + 14 * DAY_MS;
    for id in ["rate", "volume"] {
        let alerts = by_detector(&out.alerts, id);
        assert!(alerts.len() <= 3, "{id}: {:#?}", alerts);
        assert!(
            alerts.iter().all(|a| a.time.millis() < changed_at + DAY_MS),
            "{id} still alerts after a day: {alerts:#?}"
        );
    }
    assert_only_approvals(&out, "a job change is not an attack");
    // The last week of the new job raises nothing: it is the agent's normal now.
    let last_week = monday() + 21 * DAY_MS;
    let late: Vec<_> = out
        .alerts
        .iter()
        .filter(|a| a.time.millis() >= last_week)
        .collect();
    assert!(late.is_empty(), "{late:#?}");
}

#[test]
fn a_job_change_on_a_friday_is_still_the_same_change_on_monday() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    run(
        &mut engine,
        &office_agent("worker", 18, 30, &["crm", "mail"], 10_000),
    );
    // Friday of the third week: three times the transfer sizes, for good. The office
    // agent does not work at the weekend, so on Monday the change has been under way
    // for one working day: it is the same episode, not news again.
    let friday = monday() + 18 * DAY_MS;
    let out = run(&mut engine, &office_agent_from(friday, 28, 30, 30_000));
    let alerts = by_detector(&out.alerts, "volume");
    assert!(!alerts.is_empty(), "the change itself is news");
    let next_monday = monday() + 21 * DAY_MS;
    let after_weekend: Vec<_> = alerts
        .iter()
        .filter(|a| a.time.millis() >= next_monday)
        .collect();
    assert!(
        after_weekend.is_empty(),
        "the change alerts afresh after the weekend: {after_weekend:#?}"
    );
    assert_only_approvals(&out, "a job change is not an attack");
}

#[test]
fn an_outage_of_a_shared_system_is_one_fleet_alert_without_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let warm = fleet(12, 11, 30);
    run(&mut engine, &warm);
    // Day 14, 10:00-11:30: every call to mail fails, for every agent.
    let mut events = Vec::new();
    for i in 0..12 {
        for k in 0..45 {
            let t = monday() + 14 * DAY_MS + 10 * HOUR_MS + k * 2 * MINUTE_MS + i * 1_000;
            let mut e = event(
                800_000 + (i * 100 + k) as u64,
                &format!("office-{i}"),
                t,
                "send",
                "mail",
                2_000,
            );
            e.outcome = Some(Outcome::Failure);
            events.push(e);
        }
    }
    sort(&mut events);
    let out = run(&mut engine, &events);
    let fleet_alerts: Vec<_> = out.alerts.iter().filter(|a| a.fleet.is_some()).collect();
    assert_eq!(fleet_alerts.len(), 1, "{:#?}", out.alerts);
    assert_eq!(fleet_alerts[0].fleet.as_ref().unwrap().pattern, "failures");
    // The agents only ever read mail, so failing sends are not routine calls: the
    // first agents may alert on their own before the third makes it a fleet pattern.
    let individual = by_detector(&out.alerts, "denied_burst").len() - 1;
    assert!(individual <= 2, "{:#?}", out.alerts);
    assert_only_approvals(&out, "healthy agents keep their credentials");
}

/// After eleven days of a busy office fleet's work (two calls a minute, a third of
/// them to each of its three systems), its work of day 14 (a Monday), in which every
/// call of the agents numbered in `hit` has `outcome` from 10:00 to 11:30 (their
/// gateway broke, or their token expired).
fn calls_break_for(hit: &[usize], outcome: Outcome) -> Outputs {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    run(&mut engine, &fleet(12, 11, 120));
    let breaks: Vec<(usize, i64)> = hit.iter().map(|&i| (i, 0)).collect();
    run(&mut engine, &office_day_breaking(&breaks, outcome))
}

/// Day 14 of the busy office fleet of [`calls_break_for`], in which every call of agent
/// `i` of `breaks` has `outcome` from `10:00 + minutes` to 11:30.
fn office_day_breaking(breaks: &[(usize, i64)], outcome: Outcome) -> Vec<AgentEventV1> {
    let monday_14 = monday() + 14 * DAY_MS;
    let mut day: Vec<AgentEventV1> = (0..12)
        .flat_map(|i| {
            let agent = format!("office-{i}");
            let mut events = office_agent(&agent, 15, 120, &["crm", "mail", "docs"], 20_000);
            events.retain(|e| event_ms(e) >= monday_14);
            if let Some((_, minutes)) = breaks.iter().find(|(hit, _)| *hit == i) {
                let from = monday_14 + 10 * HOUR_MS + minutes * MINUTE_MS;
                let broken = from..monday_14 + 11 * HOUR_MS + 30 * MINUTE_MS;
                for e in &mut events {
                    if broken.contains(&event_ms(e)) {
                        e.outcome = Some(outcome);
                    }
                }
            }
            events
        })
        .collect();
    sort(&mut day);
    day
}

/// Fleet alerts by id, each with the agent that carried it.
fn fleet_ids(alerts: &[Alert]) -> BTreeMap<String, String> {
    alerts
        .iter()
        .filter(|a| a.fleet.is_some())
        .map(|a| (a.alert_id.clone(), a.agent_id.clone()))
        .collect()
}

/// The events of `events` whose agent is on the second instance (`second`) or not.
fn split(
    events: &[AgentEventV1],
    on_second: &dyn Fn(&AgentEventV1) -> bool,
    second: bool,
) -> Vec<AgentEventV1> {
    events
        .iter()
        .filter(|e| on_second(e) == second)
        .cloned()
        .collect()
}

/// Two instances of a group that share what they learn about the fleet, each warmed
/// with its agents' part of `warm`.
fn warmed_pair(
    dir: &Path,
    warm: &[AgentEventV1],
    on_second: &dyn Fn(&AgentEventV1) -> bool,
) -> (Engine, Engine) {
    let mut one = engine(&dir.join("one"));
    let mut two = engine(&dir.join("two"));
    one.share_fleet();
    two.share_fleet();
    run(&mut one, &split(warm, on_second, false));
    run(&mut two, &split(warm, on_second, true));
    (one, two)
}

#[test]
fn a_group_member_announcing_an_outage_late_publishes_the_single_instance_s_alert_id() {
    // Agents 0, 1, 6 and 3 break two minutes apart: one instance sees 0, 1 and 6 make
    // the outage fleet-wide.
    let warm = fleet(12, 11, 120);
    let day = office_day_breaking(&[(0, 0), (1, 2), (6, 4), (3, 6)], Outcome::Failure);
    // One fleet alert per system the agents call (crm, mail, docs), with the agent
    // that announced it.
    let announcers =
        |ids: &BTreeMap<String, String>| -> BTreeSet<String> { ids.values().cloned().collect() };
    let dir = tempfile::tempdir().unwrap();
    let mut alone = engine(&dir.path().join("alone"));
    run(&mut alone, &warm);
    let expected = fleet_ids(&run(&mut alone, &day).alerts);
    assert_eq!(expected.len(), 3, "{expected:?}");
    assert_eq!(
        announcers(&expected),
        BTreeSet::from(["office-6".to_owned()]),
        "the third agent to break announces"
    );

    // In a group, agent 6 is on the second instance, which judges its first failures
    // before it learns of 0 and 1 (alone, they are no fleet pattern); the first
    // instance judges 3's before it learns of 6, and announces there. Then the second
    // learns what the first shared and judges the rest of the outage.
    let second = |e: &AgentEventV1| e.agent_id == "office-6";
    let part = |events: &[AgentEventV1], on_second: bool| split(events, &second, on_second);
    let (mut one, mut two) = warmed_pair(dir.path(), &warm, &second);
    let cut = monday() + 14 * DAY_MS + 10 * HOUR_MS + 10 * MINUTE_MS;
    let (early, late): (Vec<AgentEventV1>, Vec<AgentEventV1>) = part(&day, true)
        .into_iter()
        .partition(|e| event_ms(e) < cut);
    let from_two = run(&mut two, &early);
    assert!(
        fleet_ids(&from_two.alerts).is_empty(),
        "{:#?}",
        from_two.alerts
    );
    let from_one = fleet_ids(&run(&mut one, &part(&day, false)).alerts);
    assert_eq!(
        announcers(&from_one),
        BTreeSet::from(["office-3".to_owned()]),
        "announced on another agent"
    );
    assert_eq!(
        from_one.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "one episode, one id"
    );
    for record in one.take_fleet_records() {
        two.merge_fleet_record(&record);
    }
    let from_two = fleet_ids(&run(&mut two, &late).alerts);
    assert!(
        from_two.keys().all(|id| expected.contains_key(id)),
        "the rest of the outage adds no episode: {from_two:?}"
    );
}

#[test]
fn a_group_member_holding_an_outage_s_first_failures_announces_it_on_merging_a_late_announcement() {
    // Agents 0 and 1 break before 10:00, agents 6, 3 and 7 after: one instance names
    // the outage after agent 0's first failures, in the hour before 10:00.
    let warm = fleet(12, 11, 120);
    let breaks = [(0, -6), (1, -4), (6, 4), (3, 6), (7, 8)];
    let day = office_day_breaking(&breaks, Outcome::Failure);
    let dir = tempfile::tempdir().unwrap();
    let mut alone = engine(&dir.path().join("alone"));
    run(&mut alone, &warm);
    let expected = fleet_ids(&run(&mut alone, &day).alerts);
    assert_eq!(
        expected.len(),
        3,
        "one per system the agents call: {expected:?}"
    );

    // In a group, the second instance holds agents 6, 3 and 7 and judges its day before
    // it learns of 0 and 1: it announces the outage after the hour, under other ids.
    // The first judges its day before it learns of that, and alone its two agents
    // are no fleet pattern.
    let on_second =
        |e: &AgentEventV1| ["office-6", "office-3", "office-7"].contains(&e.agent_id.as_str());
    let part = |events: &[AgentEventV1], second: bool| split(events, &on_second, second);
    let (mut one, mut two) = warmed_pair(dir.path(), &warm, &on_second);
    let late = fleet_ids(&run(&mut two, &part(&day, true)).alerts);
    assert_eq!(late.len(), 3, "{late:?}");
    assert!(late.keys().all(|id| !expected.contains_key(id)), "{late:?}");
    assert!(fleet_ids(&run(&mut one, &part(&day, false)).alerts).is_empty());
    assert!(
        one.take_late_fleet_alerts().is_empty(),
        "nothing merged yet"
    );

    // On merging the second's sightings, the first publishes the single instance's
    // ids, carried by agent 0's first failures, which name the outage; once.
    for record in two.take_fleet_records() {
        one.merge_fleet_record(&record);
    }
    let owed = one.take_late_fleet_alerts();
    assert_eq!(
        fleet_ids(&owed),
        expected
            .keys()
            .map(|id| (id.clone(), "office-0".to_owned()))
            .collect::<BTreeMap<_, _>>(),
        "{owed:#?}"
    );
    assert!(owed
        .iter()
        .all(|a| a.commands.is_empty() && a.summary.contains("within 0.5h")));
    for record in two.take_fleet_records() {
        one.merge_fleet_record(&record);
    }
    assert!(one.take_late_fleet_alerts().is_empty(), "owed once");
}

#[test]
fn routine_calls_failing_for_one_agent_raise_nothing_and_for_many_fleet_alerts_only() {
    // Every call of one agent fails: the other side erring says nothing about the
    // agent.
    let one = calls_break_for(&[3], Outcome::Failure);
    assert!(one.alerts.is_empty(), "{:#?}", one.alerts);
    assert!(one.commands.is_empty(), "{:#?}", one.commands);
    // Every call of every agent fails: at most one fleet alert per system, and not
    // one agent's own alert before enough agents showed it.
    let all: Vec<usize> = (0..12).collect();
    let outage = calls_break_for(&all, Outcome::Failure);
    let denied_burst = by_detector(&outage.alerts, "denied_burst");
    assert!(
        (1..=3).contains(&denied_burst.len())
            && denied_burst
                .iter()
                .all(|a| a.fleet.as_ref().is_some_and(|f| f.pattern == "failures")),
        "{:#?}",
        outage.alerts
    );
    assert!(outage.commands.is_empty(), "{:#?}", outage.commands);
}

#[test]
fn routine_calls_refused_for_one_agent_alert_and_ask_no_more_than_approval() {
    // The same calls *refused* are the agent's grant changing under it, which a human
    // should hear of.
    let refused = calls_break_for(&[3], Outcome::Denied);
    assert!(
        !by_detector(&refused.alerts, "denied_burst").is_empty(),
        "{:#?}",
        refused.alerts
    );
    assert_only_approvals(&refused, "a refused routine call is not probing");
}

#[test]
fn an_agent_flagged_from_its_first_event_still_builds_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // `first` uses the key, then `second` uses the same key on every event: every one
    // of its events is a credential_misuse (shared) finding. Its systems and hours must
    // still be learned, so the behavioural detectors are not blind to exactly the
    // suspicious agent; only the shared credential stays out of its baseline.
    let mut events = vec![event(1, "first", monday(), "read", "crm", 1_000)];
    events[0].credential_id = Some("shared-key".into());
    let mut second = office_agent("second", 14, 20, &["crm", "mail", "docs"], 5_000);
    for e in &mut second {
        e.credential_id = Some("shared-key".into());
        e.event_id = format!("s-{}", e.event_id);
    }
    events.extend(second);
    let out = run(&mut engine, &events);
    assert!(out
        .alerts
        .iter()
        .any(|a| a.detector.id == "credential_misuse" && a.agent_id == "second"));
    let state = engine.agent("second").unwrap().unwrap();
    assert!(state.baseline.systems.get("crm").is_some());
    assert!(state.baseline.systems.get("mail").is_some());
    assert_eq!(state.baseline.learned, state.baseline.events);
    assert!(state.baseline.credentials.get("shared-key").is_none());
}

#[test]
fn a_revoked_agents_routine_failures_are_escalated_evidence_not_learned_as_normal() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    run(&mut engine, &fleet(12, 11, 120));
    // Monday of day 14, 09:59: office-3 reads CRM with office-4's credential, and its
    // credential is revoked.
    let ten = monday() + 14 * DAY_MS + 10 * HOUR_MS;
    let mut misuse = event(90_001, "office-3", ten - MINUTE_MS, "read", "crm", 20_000);
    misuse.credential_id = Some("cred-office-4".into());
    let revoked = run(&mut engine, &[misuse]);
    assert!(
        revoked
            .commands
            .iter()
            .any(|c| c.agent_id == "office-3" && c.action == CommandAction::RevokeCredential),
        "{:#?}",
        revoked.commands
    );
    // Then its routine CRM calls fail for three minutes. Alone, such failures are
    // fleet evidence learned as normal; under a revocation they are escalated.
    let mut failing = calls("office-3", ten, 5_000, 36, "read", "crm", 20_000);
    for e in &mut failing {
        e.outcome = Some(Outcome::Failure);
    }
    run(&mut engine, &failing);
    let state = engine.agent("office-3").unwrap().unwrap();
    let escalated = state.slots.iter().find_map(|slot| match &slot.state {
        agentwatch::detect::KindState::DeniedBurst(burst) => Some(burst.escalated),
        _ => None,
    });
    assert_eq!(escalated, Some(true));
}

/// Three of `fleet`'s agents start using ai.gateway on day 14, half an hour apart.
fn three_adopt(first: usize) -> Vec<AgentEventV1> {
    (0..3)
        .map(|i| {
            let t = monday() + 14 * DAY_MS + 9 * HOUR_MS + i as i64 * 30 * MINUTE_MS;
            let agent = format!("office-{}", first + i);
            event(
                900_000 + i as u64,
                &agent,
                t,
                "invoke",
                "ai.gateway",
                20_000,
            )
        })
        .collect()
}

fn fleet_alerts(out: &Outputs) -> usize {
    out.alerts.iter().filter(|a| a.fleet.is_some()).count()
}

#[test]
fn a_rollout_s_share_is_of_the_whole_group_s_fleet() {
    // 80 agents: a rollout needs 5% of them, four agents; three are not one.
    let warm = fleet(80, 11, 4);
    let adopters = three_adopt(40);
    let dir = tempfile::tempdir().unwrap();
    let mut alone = engine(&dir.path().join("alone"));
    run(&mut alone, &warm);
    let out = run(&mut alone, &adopters);
    assert_eq!(fleet_alerts(&out), 0, "one instance: {:#?}", out.alerts);
    assert_eq!(
        by_detector(&out.alerts, "new_system").len(),
        3,
        "each adopter is its own anomaly"
    );

    // The same fleet split over two instances, 40 agents each: with what they share,
    // the three adopters are judged against all 80 agents, as one instance does;
    // without it, against 40, of which three are enough.
    let holds = |e: &AgentEventV1, second: bool| {
        let n: usize = e.agent_id["office-".len()..].parse().unwrap();
        (n >= 40) == second
    };
    for share in [true, false] {
        let mut one = engine(&dir.path().join(format!("one-{share}")));
        let mut two = engine(&dir.path().join(format!("two-{share}")));
        if share {
            one.share_fleet();
            two.share_fleet();
        }
        let first: Vec<AgentEventV1> = warm.iter().filter(|e| holds(e, false)).cloned().collect();
        let second: Vec<AgentEventV1> = warm.iter().filter(|e| holds(e, true)).cloned().collect();
        run(&mut one, &first);
        run(&mut two, &second);
        for record in one.take_fleet_records() {
            two.merge_fleet_record(&record);
        }
        let out = run(&mut two, &adopters);
        if share {
            assert_eq!(
                fleet_alerts(&out),
                0,
                "shared: as one instance: {:#?}",
                out.alerts
            );
        } else {
            assert_eq!(
                fleet_alerts(&out),
                1,
                "unshared: 40 agents: {:#?}",
                out.alerts
            );
        }
    }
}
