//! The binary as users run it.

use std::process::{Command, Output};

fn agentwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run agentwatch")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_shipped_detectors() {
    let out = agentwatch(&["validate", "--detectors", "detectors"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for id in ["new_system", "rate", "volume"] {
        assert!(stdout.contains(id), "{stdout}");
    }
}

#[test]
fn validate_reports_problems_with_file_and_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "id = \"bad\"\nkind = \"nope\"\ndescription = \"x\"\n[thresholds]\nlow = 2.0\n",
    )
    .unwrap();
    let out = agentwatch(&["validate", "--detectors", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml:2: unknown kind"), "{stderr}");
    assert!(stderr.contains("bad.toml:5: threshold low = 2"), "{stderr}");
    assert!(stderr.contains("[detector_config]"), "{stderr}");
}

#[test]
fn validate_checks_the_example_service_config() {
    let out = agentwatch(&["validate", "--config", "deploy/agentwatch.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("no problems; brokers 127.0.0.1:9092"),
        "{stdout}"
    );
}

#[test]
fn validate_reports_every_service_config_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.toml");
    std::fs::write(
        &path,
        "[kafka]\ngroup = \"aw\"\n[state]\nflush_interval = \"often\"\n[metrics]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = agentwatch(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[config]: 3 configuration problem(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("svc.toml:2: [kafka] unknown field `group`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("svc.toml:4: flush_interval \"often\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("svc.toml:6: listen \"nowhere\""),
        "{stderr}"
    );
}

#[test]
fn simulate_needs_a_destination() {
    let out = agentwatch(&["simulate", "--agents", "2", "--days", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--output FILE (or -) or --to-kafka"));
}

#[test]
fn schemas_check_passes_on_the_committed_files() {
    let out = agentwatch(&["schemas", "--check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn replay_survives_bad_lines_and_reports_them_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let good = |i: u32| {
        format!(
            r#"{{"event_id":"e{i}","time":"2026-01-05T09:0{i}:00Z","agent_id":"a","action":"read","system":"crm","bytes_in":100}}"#
        )
    };
    let mut content = Vec::new();
    content.extend(good(1).into_bytes());
    content.extend(b"\n{not json\n");
    content.extend(good(2).into_bytes());
    content.extend(
        b"\n{\"event_id\":\"x\",\"time\":1,\"agent_id\":\"a\",\"action\":\"r\"}\n\xff\xfe\n",
    );
    content.extend(vec![b'x'; 10 * 1024 * 1024]);
    content.push(b'\n');
    content.extend(good(3).into_bytes());
    content.push(b'\n');
    std::fs::write(&input, content).unwrap();
    let output = dir.path().join("out.jsonl");
    let scores = dir.path().join("scores.csv");
    let out = agentwatch(&[
        "replay",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("replayed 3 events from 7 lines"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid lines: 4"), "{stderr}");
    for expected in [
        "line 2: not_json",
        "line 4: missing_field",
        "line 5: not_utf8",
        "line 6: too_large",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
    let csv = std::fs::read_to_string(scores).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "event_id,agent_id,time,detector,score");
    assert_eq!(
        rows.len(),
        1 + 3 * 10,
        "one row per event per built-in detector (10): {csv}"
    );
    assert!(
        rows[1].starts_with("e1,a,2026-01-05T09:01:00.000Z,"),
        "{}",
        rows[1]
    );
}

#[test]
fn replay_reads_stdin_as_it_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sim.jsonl");
    let out = agentwatch(&[
        "simulate",
        "--agents",
        "20",
        "--days",
        "10",
        "--seed",
        "5",
        "--output",
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_file = dir.path().join("from-file.jsonl");
    let out = agentwatch(&[
        "replay",
        "--input",
        input.to_str().unwrap(),
        "--output",
        from_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_stdin = dir.path().join("from-stdin.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(["replay", "--input", "-", "--output"])
        .arg(&from_stdin)
        .env("RUST_LOG", "warn")
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .expect("run agentwatch");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = std::fs::read_to_string(&input).unwrap().lines().count();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("replayed {lines} events from {lines} lines")),
        "{stderr}"
    );
    let (file_alerts, stdin_alerts) = (
        std::fs::read_to_string(&from_file).unwrap(),
        std::fs::read_to_string(&from_stdin).unwrap(),
    );
    assert!(!file_alerts.is_empty(), "the simulation has attacks");
    assert_eq!(stdin_alerts, file_alerts);
}

#[test]
fn simulate_then_replay_with_labels_prints_quality() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("sim.jsonl");
    let labels = dir.path().join("labels.json");
    let out = agentwatch(&[
        "simulate",
        "--agents",
        "25",
        "--days",
        "6",
        "--seed",
        "3",
        "--output",
        events.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("incidents: exfiltration 5, first_access 5, runaway_loop 5"),
        "{}",
        text(&out.stderr)
    );
    let state = dir.path().join("state");
    let out = agentwatch(&[
        "replay",
        "--input",
        events.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        dir.path().join("alerts.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("recall exfiltration"), "{stderr}");
    // Simulated January traffic is months old by now, and in order: every line is valid.
    assert!(!stderr.contains("invalid lines"), "{stderr}");
    assert!(stderr.contains("per 10,000 events"), "{stderr}");
    assert!(stderr.contains("peak memory"), "{stderr}");
    // A second run on the same state resumes after the last line: nothing is counted twice.
    let out = agentwatch(&[
        "replay",
        "--input",
        events.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        dir.path().join("again.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("replayed 0 events"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn simulate_writes_a_scenario_with_its_changes_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes.json");
    let labels = dir.path().join("labels.json");
    let out = agentwatch(&[
        "simulate",
        "--agents",
        "40",
        "--days",
        "14",
        "--scenario",
        "moderate,rollout,outage",
        "--output",
        dir.path().join("sim.jsonl").to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--changes",
        changes.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("scenario moderate,rollout,outage"),
        "{stderr}"
    );
    assert!(stderr.contains("moderate_exfiltration 4"), "{stderr}");
    assert!(stderr.contains("changes: outage 1, rollout 1"), "{stderr}");
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&changes).unwrap()).unwrap();
    let kinds: Vec<&str> = written
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{written:?}");
    assert!(kinds.contains(&"rollout") && kinds.contains(&"outage"));
    assert!(written
        .iter()
        .all(|c| c["agents"].as_array().is_some_and(|a| !a.is_empty())));

    let out = agentwatch(&["simulate", "--scenario", "strong,flood", "--output", "-"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown part \"flood\""),
        "{}",
        text(&out.stderr)
    );
    let help = text(&agentwatch(&["simulate", "--help"]).stdout);
    for part in ["moderate", "mixed", "job_change", "--changes"] {
        assert!(help.contains(part), "{help}");
    }
}

#[test]
fn demo_runs_end_to_end_and_explains_alerts() {
    let out = agentwatch(&[
        "demo",
        "--agents",
        "20",
        "--days",
        "6",
        "--pace",
        "0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("agentwatch demo: 20 registered agents over 6 days"),
        "{stdout}"
    );
    assert!(stdout.contains("metrics at http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("quality against labels"), "{stdout}");
    assert!(
        stdout.contains("HIGH") || stdout.contains("CRITICAL"),
        "{stdout}"
    );
    // The approval loop, in order: unapproved delete and require_approval, the
    // approval naming that command, the approved delete allowed, the reuse caught.
    let steps = [
        "the approval loop, step by step",
        "without an approval_id",
        "-> require_approval",
        "approves one delete on",
        "\"request_id\":\"",
        ": allowed, no alert",
        "(single use): caught, rule approval_exhausted",
        "already used up",
    ];
    let mut from = 0;
    for step in steps {
        let at = stdout[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing after byte {from}:\n{stdout}"));
        from += at + step.len();
    }
}

#[test]
fn missing_input_is_a_clear_error() {
    let out = agentwatch(&["replay", "--input", "/nonexistent/events.jsonl"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("opening /nonexistent/events.jsonl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn replay_refuses_event_times_far_from_the_watermark_and_the_bounds_are_flags() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let line = |id: &str, time: &str| {
        format!(
            r#"{{"event_id":"{id}","time":"{time}","agent_id":"a","action":"read","system":"crm","bytes_in":100}}"#
        )
    };
    // A morning from months ago, with one event dated 2099 and one from 30 days earlier.
    let lines = [
        line("e1", "2025-06-02T09:00:00Z"),
        line("e2", "2025-06-02T09:01:00Z"),
        line("future", "2099-06-02T09:02:00Z"),
        line("e3", "2025-06-02T09:03:00Z"),
        line("stale", "2025-05-03T09:04:00Z"),
        line("e4", "2025-06-02T09:05:00Z"),
    ];
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--input",
            input.to_str().unwrap(),
            "--output",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        agentwatch(&args)
    };
    let out = replay(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("replayed 4 events from 6 lines"),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid lines: 2 (time_out_of_range 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: time_out_of_range"), "{stderr}");
    assert!(stderr.contains("line 5: time_out_of_range"), "{stderr}");

    let out = replay(&["--max-behind", "60d"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("replayed 5 events from 6 lines"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: time_out_of_range"), "{stderr}");

    let out = replay(&["--max-ahead", "0s"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a positive duration"),
        "{}",
        text(&out.stderr)
    );
}
