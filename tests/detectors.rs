//! Behaviour of each detector: warm an agent, then show what fires and what must not.

mod common;

use agentwatch::model::time::{DAY_MS, HOUR_MS};
use agentwatch::model::{Anomaly, CommandAction};
use common::{
    by_detector, calls, engine, engine_with, engine_with_options, event, monday, office_agent, run,
};

/// Two weeks of an office agent on `kb` and `search` that, every `every` calls, spends
/// its last `calls` on a source it never used before.
fn explorer(agent: &str, every: usize, calls: usize) -> Vec<agentwatch::model::AgentEventV1> {
    let mut events = office_agent(agent, 14, 40, &["kb", "search"], 50_000);
    for (i, e) in events.iter_mut().enumerate() {
        if i % every >= every - calls {
            e.system = format!("source-{}", i / every);
        }
    }
    events
}

#[test]
fn new_system_flags_a_steady_agent_reaching_for_payroll() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let mut events = office_agent("billing", 12, 40, &["billing", "crm", "mail"], 8_000);
    let quiet = run(&mut engine, &events);
    assert!(
        quiet.alerts.is_empty(),
        "steady traffic raised {:?}",
        quiet.alerts
    );
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS;
    events = vec![event(90_001, "billing", t, "read", "hr.payroll", 8_000)];
    let out = run(&mut engine, &events);
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
    let alert = &out.alerts[0];
    assert_eq!(alert.detector.id, "new_system");
    assert_eq!(alert.anomaly, Anomaly::Unseen);
    assert!(alert.summary.contains("hr.payroll"), "{}", alert.summary);
    assert!(alert.evidence.p_value < 0.001, "{}", alert.evidence.p_value);
}

#[test]
fn new_system_lets_an_exploratory_agent_explore() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // A research agent that turns to a new source every 30 calls for two weeks.
    let events = explorer("research", 30, 1);
    let out = run(&mut engine, &events);
    let new_system: Vec<_> = out
        .alerts
        .iter()
        .filter(|a| a.detector.id == "new_system")
        .collect();
    assert!(new_system.is_empty(), "exploration raised {new_system:?}");
    // The same agent touching a sensitive system is still worth an alert.
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS;
    let out = run(
        &mut engine,
        &[event(90_002, "research", t, "read", "iam.admin", 1_000)],
    );
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
}

#[test]
fn new_system_flags_a_settled_agent_whose_setup_allowance_would_have_hidden_it() {
    // A finance agent met its seven systems (one of them sensitive) on its first
    // morning and has used only those since. Its setup still counts as three or four
    // discoveries two weeks on; its singletons (none) say it has stopped exploring.
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let systems = [
        "finance.ledger",
        "crm",
        "mail",
        "billing",
        "wiki",
        "calendar",
        "tickets",
    ];
    let events = office_agent("ledger-bot", 12, 40, &systems, 8_000);
    assert!(run(&mut engine, &events).alerts.is_empty());
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS;
    let out = run(
        &mut engine,
        &[event(90_004, "ledger-bot", t, "read", "iam.roles", 8_000)],
    );
    let alerts = by_detector(&out.alerts, "new_system");
    assert_eq!(alerts.len(), 1, "{:?}", out.alerts);
    assert!(
        alerts[0].summary.contains("iam.roles"),
        "{}",
        alerts[0].summary
    );
}

#[test]
fn new_system_lets_an_explorer_whose_new_sources_recur_explore() {
    // Every new source is fetched three times in a row, so the agent has few systems
    // seen once and a low unseen mass. Its second and third calls are revisits of a
    // rare system, judged by its discovery rate, not by that mass.
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let events = explorer("scout", 40, 3);
    let out = run(&mut engine, &events);
    assert!(
        by_detector(&out.alerts, "new_system").is_empty(),
        "exploration raised {:?}",
        out.alerts
    );
}

#[test]
fn volume_flags_one_huge_transfer_but_not_normal_wobble() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let events = office_agent("exporter", 8, 30, &["crm"], 20_000);
    assert!(run(&mut engine, &events).alerts.is_empty());
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    let mild = run(
        &mut engine,
        &[event(80_001, "exporter", t, "read", "crm", 60_000)],
    );
    assert!(
        mild.alerts.is_empty(),
        "3x normal is not an incident: {:?}",
        mild.alerts
    );
    let huge = run(
        &mut engine,
        &[event(
            80_002,
            "exporter",
            t + 60_000,
            "export",
            "crm",
            900_000_000,
        )],
    );
    assert_eq!(huge.alerts.len(), 1);
    let alert = &huge.alerts[0];
    assert_eq!(alert.anomaly, Anomaly::HighVolume);
    assert!(alert.summary.contains("one transfer"), "{}", alert.summary);
    assert!(
        !alert.commands.is_empty(),
        "a critical exfiltration should trigger a response"
    );
}

#[test]
fn volume_flags_a_burst_of_moderately_large_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let events = office_agent("burst", 8, 30, &["crm", "docs"], 20_000);
    assert!(run(&mut engine, &events).alerts.is_empty());
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    // 30 transfers of ~12x normal in 5 minutes: none alone is alarming.
    let burst: Vec<_> = calls("burst", t, 10_000, 30, "read", "docs", 240_000);
    let out = run(&mut engine, &burst);
    assert!(!out.alerts.is_empty(), "burst went unnoticed");
    assert!(
        out.alerts[0].evidence.statistic.contains("window"),
        "{:?}",
        out.alerts[0].evidence
    );
}

/// An agent that reads kilobytes from `crm` and, one call in twenty, pulls megabytes
/// from `artifactory`, every day for `days` days (sizes wobble by about ±30%).
fn two_sized_agent(agent: &str, days: i64) -> Vec<agentwatch::model::AgentEventV1> {
    let mut seed = 7u64;
    let mut wobble = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        0.7 + 0.6 * ((seed >> 11) as f64 / (1u64 << 53) as f64)
    };
    let mut events = Vec::new();
    for day in 0..days {
        for call in 0..160 {
            let t = monday() + day * DAY_MS + 9 * HOUR_MS + call * 180_000;
            let id = (day * 1_000 + call) as u64;
            let (system, typical) = if call % 20 == 7 {
                ("artifactory", 2_000_000.0)
            } else {
                ("crm", 2_000.0)
            };
            let bytes = (typical * wobble()) as u64;
            events.push(event(id, agent, t, "read", system, bytes));
        }
    }
    events
}

#[test]
fn volume_judges_a_transfer_by_what_its_system_usually_moves() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    assert!(run(&mut engine, &two_sized_agent("builder", 30))
        .alerts
        .is_empty());
    let t = monday() + 30 * DAY_MS + 10 * HOUR_MS;
    // A session spent on the heavy system: forty ordinary pulls in a row. Judged
    // agent-wide, each is in the top 5% of sizes, a sustained shift.
    let session: Vec<_> = calls("builder", t, 90_000, 40, "read", "artifactory", 2_100_000);
    let out = run(&mut engine, &session);
    let volume: Vec<_> = out
        .alerts
        .iter()
        .filter(|a| a.anomaly == Anomaly::HighVolume)
        .collect();
    assert!(volume.is_empty(), "ordinary pulls alerted: {volume:#?}");
    // Forty reads of `crm` at 400 KB: far beyond what crm moves, though smaller than
    // the agent's usual pulls.
    let t = t + 4 * HOUR_MS;
    let unusual: Vec<_> = calls("builder", t, 90_000, 40, "read", "crm", 400_000);
    let out = run(&mut engine, &unusual);
    assert!(
        out.alerts.iter().any(|a| a.anomaly == Anomaly::HighVolume),
        "200x crm's usual size went unnoticed: {:#?}",
        out.alerts
    );
}

#[test]
fn a_heavy_session_does_not_excuse_a_burst_an_hour_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let events = office_agent("burst", 8, 30, &["crm", "docs"], 20_000);
    assert!(run(&mut engine, &events).alerts.is_empty());
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    // Eight large transfers in eight minutes: flagged, and held by the pending model,
    // which is then mature (five or more) but only minutes old.
    let session = calls("burst", t, 60_000, 8, "read", "docs", 400_000);
    let first = run(&mut engine, &session);
    assert!(
        first
            .alerts
            .iter()
            .any(|a| a.anomaly == Anomaly::HighVolume),
        "the heavy session itself is not flagged: {:#?}",
        first.alerts
    );
    // Ninety minutes later (past the cooldown), a burst of thirty transfers of the same
    // order: the pending model would explain each transfer, but not the burst.
    let burst = calls(
        "burst",
        t + 90 * 60_000,
        10_000,
        30,
        "read",
        "docs",
        240_000,
    );
    let out = run(&mut engine, &burst);
    assert!(
        out.alerts.iter().any(|a| a.anomaly == Anomaly::HighVolume),
        "the burst passed as the session's continuation: {:#?}",
        out.alerts
    );
}

#[test]
fn rate_accepts_schedules_but_flags_a_runaway_loop() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // A nightly batch: 60 calls a minute from 01:00 to 02:00, every night.
    let mut events = Vec::new();
    let mut id = 0;
    for day in 0..10 {
        for minute in 0..60 {
            for k in 0..60 {
                id += 1;
                let t = monday() + day * DAY_MS + HOUR_MS + minute * 60_000 + k * 1_000;
                events.push(event(id, "nightly", t, "write", "warehouse", 50_000));
            }
        }
    }
    // An office agent starting every morning.
    events.extend(office_agent("office", 10, 60, &["crm", "mail"], 5_000));
    events.sort_by_key(|e| serde_json::to_string(&e.time).unwrap());
    let out = run(&mut engine, &events);
    assert!(out.alerts.is_empty(), "schedules raised {:?}", out.alerts);

    let t = monday() + 10 * DAY_MS + 11 * HOUR_MS;
    let runaway: Vec<_> = calls("office", t, 200, 600, "read", "crm", 5_000);
    let out = run(&mut engine, &runaway);
    let rate = by_detector(&out.alerts, "rate");
    assert_eq!(
        rate.len(),
        1,
        "one alert, the rest held back by the cooldown: {rate:?}"
    );
    assert_eq!(rate[0].anomaly, Anomaly::HighRate);
}

/// Working sessions of `agent`: each working hour of `days` weekdays, `per_min` calls a
/// minute for `minutes`, the `i`-th call of a session on `call(day, hour, i)`.
fn sessions(
    agent: &str,
    days: i64,
    per_min: i64,
    minutes: i64,
    mut call: impl FnMut(i64, i64, i64) -> (&'static str, &'static str),
) -> Vec<agentwatch::model::AgentEventV1> {
    let mut events = Vec::new();
    for day in (0..days).filter(|day| day % 7 < 5) {
        for hour in 9..17 {
            let start = monday() + day * DAY_MS + hour * HOUR_MS + (hour % 3) * 7 * 60_000;
            for i in 0..per_min * minutes {
                let (action, system) = call(day, hour, i);
                let t = start + i * 60_000 / per_min;
                events.push(event(t as u64, agent, t, action, system, 5_000));
            }
        }
    }
    events
}

/// Replays `history` and fails if `rate` alerts on any of it: the agent's ordinary work.
fn learn_quietly(
    engine: &mut agentwatch::pipeline::Engine,
    history: &[agentwatch::model::AgentEventV1],
) {
    let out = run(engine, history);
    let rate = by_detector(&out.alerts, "rate");
    assert!(rate.is_empty(), "ordinary sessions alerted: {rate:#?}");
}

#[test]
fn a_loop_is_judged_against_the_history_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // Sessions of 6 calls a minute for 15 minutes (up to 60 calls in ten minutes), each
    // on one system.
    let systems = ["crm", "mail", "calendar"];
    let history = sessions("bursty", 12, 6, 15, |day, hour, _| {
        ("read", systems[(day + hour) as usize % systems.len()])
    });
    learn_quietly(&mut engine, &history);
    // A loop at five times the session pace for ten minutes. Its ten-minute count
    // climbs past 60 one call at a time; learned as it climbs, it would always look
    // like the most ever seen, a few calls more.
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS + 30 * 60_000;
    let runaway = calls("bursty", t, 2_000, 300, "read", "crm", 5_000);
    let out = run(&mut engine, &runaway);
    assert!(
        out.alerts.iter().any(|a| a.anomaly == Anomaly::HighRate),
        "a loop at five times the pace passed: {:#?}",
        out.alerts
    );
}

#[test]
fn a_burst_that_alerted_and_did_not_escalate_is_learned() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // A steady agent (a call a minute, around the clock) that bursts ten calls in a
    // minute every three days, from day 6.
    let mut events = calls(
        "deployer",
        monday(),
        60_000,
        18 * 1_440,
        "read",
        "github",
        2_000,
    );
    let bursts: Vec<i64> = (0..4)
        .map(|k| monday() + (6 + 3 * k) * DAY_MS + 14 * HOUR_MS + 30_000)
        .collect();
    for &b in &bursts {
        events.extend(calls("deployer", b, 5_000, 10, "write", "github", 2_000));
    }
    events.sort_by_key(|e| serde_json::to_string(&e.time).unwrap());
    let out = run(&mut engine, &events);
    let rate = by_detector(&out.alerts, "rate");
    assert!(!rate.is_empty(), "the first burst is news and must alert");
    assert!(
        rate.len() <= 2,
        "every burst alerted again, though none escalated: {:#?}",
        rate.iter().map(|a| &a.summary).collect::<Vec<_>>()
    );
}

/// The calls an assistant makes in the loop tests, one of them at random each time.
const FOUR_CALLS: [(&str, &str); 4] = [
    ("read", "crm"),
    ("search", "crm"),
    ("read", "mail"),
    ("write", "calendar"),
];

/// Teaches `engine` twelve days of an assistant's sessions (`per_minute` calls a
/// minute for `minutes`), each call one of [`FOUR_CALLS`] drawn by an LCG from `seed`.
fn learn_sessions_of_four_calls(
    engine: &mut agentwatch::pipeline::Engine,
    seed: u64,
    per_minute: i64,
    minutes: i64,
) {
    let mut seed = seed;
    let history = sessions("assistant", 12, per_minute, minutes, |_, _, _| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        FOUR_CALLS[(seed >> 33) as usize % FOUR_CALLS.len()]
    });
    learn_quietly(engine, &history);
}

#[test]
fn a_loop_of_one_call_is_caught_at_a_pace_the_agent_reaches_in_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // Sessions of 8 calls a minute for 15 minutes, each call one of four at random.
    learn_sessions_of_four_calls(&mut engine, 11, 8, 15);
    // Six calls a minute for ten minutes: slower than its sessions, but all one call.
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS + 30 * 60_000;
    let runaway = calls("assistant", t, 10_000, 60, "search", "crm", 5_000);
    let out = run(&mut engine, &runaway);
    let rate = by_detector(&out.alerts, "rate");
    assert!(
        rate.iter().any(|a| a.summary.contains("in a row")),
        "sixty identical calls in a row passed: {:#?}",
        out.alerts
    );
}

#[test]
fn a_loop_of_one_call_amid_other_calls_is_caught_by_that_calls_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    // Sessions of 2 calls a minute for 30 minutes, each call one of four at random:
    // about 5 calls of a kind in ten minutes, 20 in all.
    learn_sessions_of_four_calls(&mut engine, 5, 2, 30);
    let pairs = FOUR_CALLS;
    // A loop of one call for ten minutes, every third call broken by one of the
    // agent's other calls: never more than two identical calls in a row, 40 calls in
    // all, 27 of them of one kind.
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS + 30 * 60_000;
    let runaway: Vec<_> = (0..40)
        .map(|i| {
            let at = t + i * 15_000;
            let (action, system) = if i % 3 == 2 {
                pairs[(i as usize / 3) % 2 * 2 + 1]
            } else {
                ("read", "crm")
            };
            event(at as u64, "assistant", at, action, system, 5_000)
        })
        .collect();
    let out = run(&mut engine, &runaway);
    let rate = by_detector(&out.alerts, "rate");
    assert!(
        rate.iter().any(|a| a.summary.contains("calls of one kind")),
        "27 read calls on crm in ten minutes passed: {:#?}",
        rate.iter().map(|a| &a.summary).collect::<Vec<_>>()
    );
}

/// The per-transfer statistics and size histogram of the agent's `volume` slot.
fn volume_state(state: &agentwatch::state::AgentState) -> String {
    let key = agentwatch::detect::instance_key("volume");
    let slot = state.slots.iter().find(|s| s.key == key).unwrap();
    match &slot.state {
        agentwatch::detect::KindState::Volume(v) => format!("{:?} {:?}", v.transfers, v.sizes),
        other => panic!("not a volume state: {other:?}"),
    }
}

#[test]
fn anomalies_are_not_learned_and_cooldown_counts_what_it_swallows() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with(dir.path(), &office_agent("victim", 8, 30, &["crm"], 20_000));
    let before = engine.agent("victim").unwrap().unwrap();
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    let exfil: Vec<_> = calls("victim", t, 3 * 60_000, 5, "export", "crm", 800_000_000);
    let out = run(&mut engine, &exfil);
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
    let after = engine.agent("victim").unwrap().unwrap();
    assert_eq!(
        volume_state(&after),
        volume_state(&before),
        "anomalous transfers entered the volume baseline"
    );
    // Each kind keeps only its own aspect out: the transfers touched a known system in
    // a known hour, and that much is learned.
    assert_eq!(after.baseline.learned, before.baseline.learned + 5);
    assert_eq!(after.baseline.events, before.baseline.events + 5);
    // After the cooldown, the next alert reports how many findings were held back.
    let later = t + 2 * HOUR_MS;
    let out = run(
        &mut engine,
        &[event(60_010, "victim", later, "export", "crm", 800_000_000)],
    );
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].suppressed, 4);
}

#[test]
fn a_burst_that_arrives_out_of_order_is_still_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with(dir.path(), &office_agent("victim", 8, 30, &["crm"], 20_000));
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    let mut exfil: Vec<_> = calls("victim", t, 3 * 60_000, 5, "export", "crm", 800_000_000);
    exfil.reverse();
    let out = run(&mut engine, &exfil);
    assert_eq!(
        out.alerts.len(),
        1,
        "each earlier event restarted the cooldown: {:?}",
        out.alerts.iter().map(|a| &a.time).collect::<Vec<_>>()
    );
}

#[test]
fn repeated_offences_escalate_to_stronger_and_longer_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_with(dir.path(), &office_agent("repeat", 8, 30, &["crm"], 20_000));
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    let mut actions = Vec::new();
    for i in 0..4 {
        let at = t + i * 2 * HOUR_MS;
        let out = run(
            &mut engine,
            &[event(
                50_000 + i as u64,
                "repeat",
                at,
                "export",
                "crm",
                900_000_000,
            )],
        );
        actions.extend(out.commands.iter().map(|c| c.action));
    }
    assert!(
        actions.contains(&CommandAction::RevokeCredential),
        "{actions:?}"
    );
    assert!(
        actions.windows(2).all(|w| w[0] <= w[1]),
        "responses never de-escalate within the risk half-life: {actions:?}"
    );
}

#[test]
fn replays_are_deterministic() {
    let mut events = office_agent("det", 8, 30, &["crm", "docs"], 20_000);
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    events.push(event(99_999, "det", t, "export", "crm", 900_000_000));
    events.push(event(99_998, "det", t + 60_000, "read", "hr.payroll", 100));
    let outputs: Vec<String> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let mut engine = engine(dir.path());
            let out = run(&mut engine, &events);
            assert!(out.alerts.len() >= 2);
            serde_json::to_string(&(out.alerts, out.commands)).unwrap()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn new_system_calls_a_long_forgotten_system_rare() {
    // A revisit of a non-sensitive system is well within the shipped budget (about one
    // new system a week is this agent's own normal); an instance with a budget of one
    // alert per agent-day reports it, as RARE.
    let dir = tempfile::tempdir().unwrap();
    let text =
        include_str!("../detectors/new_system.toml").replace("budget = 0.01", "budget = 1.0");
    let detectors =
        agentwatch::detect::DetectorSet::from_sources([("new_system.toml".to_owned(), text)])
            .unwrap();
    let mut engine = agentwatch::pipeline::Engine::new(
        detectors,
        agentwatch::state::StateStore::open(dir.path()).unwrap(),
        Default::default(),
    )
    .unwrap();
    let mut events = office_agent("steady", 12, 40, &["billing", "crm"], 8_000);
    // One early visit to the archive, during the agent's first days.
    events[5].system = "archive".into();
    assert!(run(&mut engine, &events).alerts.is_empty());
    let t = monday() + 14 * DAY_MS + 10 * HOUR_MS;
    let out = run(
        &mut engine,
        &[event(90_003, "steady", t, "read", "archive", 8_000)],
    );
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
    assert_eq!(out.alerts[0].anomaly, Anomaly::Rare);
    assert!(
        out.alerts[0].summary.contains("used only 1 time(s) before"),
        "{}",
        out.alerts[0].summary
    );
}

#[test]
fn young_agents_are_in_warm_up_and_raise_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let t = monday() + 10 * HOUR_MS;
    let mut events: Vec<_> = (0..20)
        .map(|i| event(i, "newcomer", t + i as i64 * 60_000, "read", "crm", 5_000))
        .collect();
    events.push(event(
        99,
        "newcomer",
        t + 30 * 60_000,
        "export",
        "hr.payroll",
        2_000_000_000,
    ));
    let out = run(&mut engine, &events);
    assert!(
        out.alerts.is_empty(),
        "warm-up should hold alerts back: {:?}",
        out.alerts
    );
}

#[test]
fn without_a_credential_to_name_revocation_becomes_an_approval_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let mut events = office_agent("keyless", 8, 30, &["crm"], 20_000);
    for e in &mut events {
        e.credential_id = None;
    }
    run(&mut engine, &events);
    let t = monday() + 8 * DAY_MS + 10 * HOUR_MS;
    let mut exfil = event(40_000, "keyless", t, "export", "crm", 900_000_000);
    exfil.credential_id = None;
    let out = run(&mut engine, &[exfil]);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.commands.len(), 1, "{:?}", out.commands);
    assert_eq!(out.commands[0].action, CommandAction::RequireApproval);
    assert_eq!(out.commands[0].credential_id, None);
}

#[test]
fn a_detector_that_only_asks_for_approval_adds_risk_only_up_to_that_tier() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let warm = calls("ops", monday(), 600_000, 3 * 144, "read", "k8s", 4_000);
    run(&mut engine, &warm);
    // Twenty deletes without an approval, one every quarter hour: each is a medium
    // high_risk_action alert, answered by asking for an approval.
    let start = monday() + 3 * DAY_MS + 10 * HOUR_MS;
    let deletes = calls("ops", start, 15 * 60_000, 20, "delete", "k8s", 4_000);
    let out = run(&mut engine, &deletes);
    let alerts = by_detector(&out.alerts, "high_risk_action");
    assert!(alerts.len() >= 10, "{:?}", out.alerts);
    let highest = alerts.iter().map(|a| a.risk).fold(0.0, f64::max);
    assert!(
        highest <= 4.0 + 1e-9,
        "repeated approval requests stacked risk to {highest}"
    );
    assert!(out
        .commands
        .iter()
        .all(|c| c.action == CommandAction::RequireApproval));
}

/// A young agent meeting its systems: `n` calls a minute apart from Monday, each to a
/// system it never used, all inside `new_system`'s warm-up (50 events, 24 hours).
fn meeting_its_systems(agent: &str, n: i64) -> Vec<agentwatch::model::AgentEventV1> {
    (0..n)
        .map(|i| {
            let t = monday() + i * 60_000;
            event(t as u64, agent, t, "read", &format!("system-{i}"), 1_000)
        })
        .collect()
}

/// Calibration measures how often the applied model finds an agent's ordinary events
/// improbable. A baseline still forming finds every first use improbable: counted, the
/// warm-up would hold the agent to a looser standard once it ends.
#[test]
fn calibration_counts_only_what_a_warmed_up_detector_tests() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let key = agentwatch::detect::instance_key("new_system");
    let tests = |engine: &agentwatch::pipeline::Engine| {
        let state = engine.agent("young").unwrap().expect("agent state");
        let slot = state
            .slots
            .iter()
            .find(|s| s.key == key)
            .expect("new_system slot");
        slot.calibration.tests
    };
    run(&mut engine, &meeting_its_systems("young", 40));
    assert_eq!(tests(&engine), 0.0, "warm-up tests were counted");
    // A day later, past the warm-up, its calls to known systems are counted.
    let later: Vec<_> = calls(
        "young",
        monday() + DAY_MS + HOUR_MS,
        60_000,
        30,
        "read",
        "system-1",
        1_000,
    );
    run(&mut engine, &later);
    assert!(tests(&engine) >= 1.0, "warmed-up tests were not counted");
}

/// A kind whose score only reads is not scored during warm-up, since nothing it finds
/// can flag; asked for every event's score (`replay --scores`), the engine still
/// scores it.
#[test]
fn scores_asked_for_are_reported_during_warm_up() {
    let dir = tempfile::tempdir().unwrap();
    let new_system = agentwatch::detect::DetectorSet::builtin()
        .unwrap()
        .iter()
        .position(|instance| instance.id == "new_system")
        .expect("new_system is built in");
    let options = agentwatch::pipeline::EngineOptions {
        record_scores: true,
        ..Default::default()
    };
    let mut engine = engine_with_options(dir.path(), options);
    let out = run(&mut engine, &meeting_its_systems("young", 40));
    let scored = out
        .scores
        .iter()
        .filter(|row| row.detector == new_system && row.score > 0.0)
        .count();
    assert!(scored >= 30, "{scored} of 40 first uses scored");
}
