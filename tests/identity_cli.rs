//! keygen, verify, inspect and registry files, through the binary as users run them.

use std::path::Path;
use std::process::{Command, Output};

fn agentwatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentwatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "debug")
        .env_remove("AGENTWATCH_SIGNING_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run agentwatch")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Simulates a small fleet with its registry and replays it with `extra` arguments;
/// returns (events, registry, labels, output) paths.
fn simulate_and_replay(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let events = dir.join("events.jsonl");
    let registry = dir.join("registry.toml");
    let labels = dir.join("labels.json");
    let out = agentwatch(
        &[
            "simulate",
            "--agents",
            "20",
            "--days",
            "6",
            "--seed",
            "5",
            "--output",
            path(&events),
            "--labels",
            path(&labels),
            "--registry",
            path(&registry),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut args = vec![
        "replay",
        "--input",
        path(&events),
        "--registry",
        path(&registry),
        "--labels",
        path(&labels),
    ];
    args.extend_from_slice(extra);
    let out = agentwatch(&args, env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

fn commands_in(output: &Path) -> Vec<String> {
    std::fs::read_to_string(output)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"command_id\""))
        .map(str::to_owned)
        .collect()
}

fn verify(dir: &Path, key: &Path, lines: &[String], at: &str) -> Output {
    let input = dir.join("to-verify.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    agentwatch(
        &[
            "verify",
            "--public-key",
            path(key),
            "--input",
            path(&input),
            "--at",
            at,
        ],
        &[],
    )
}

/// Fails unless `verify` succeeded and accepted exactly `expected` commands.
fn assert_all_accepted(out: &Output, expected: usize) {
    let verdicts = text(&out.stdout);
    assert!(out.status.success(), "{verdicts}{}", text(&out.stderr));
    let accepted = verdicts.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(accepted, expected, "{verdicts}");
}

const BEFORE_ANY_EXPIRY: &str = "2026-01-05T00:00:00Z";

#[test]
fn keygen_signs_commands_that_verify_and_every_tampering_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("signing");
    let out = agentwatch(&["keygen", "--out", path(&prefix)], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = agentwatch(&["keygen", "--out", path(&prefix)], &[]);
    assert!(
        !again.status.success(),
        "keygen must not overwrite a signing key"
    );

    let output = dir.path().join("out.jsonl");
    let replay = simulate_and_replay(
        dir.path(),
        &["--output", path(&output), "--signing-key", path(&secret)],
        &[],
    );
    let seed_line = std::fs::read_to_string(&secret).unwrap();
    let seed = seed_line.lines().last().unwrap();
    assert!(
        !text(&replay.stderr).contains(seed),
        "the signing key must never be logged"
    );
    let commands = commands_in(&output);
    assert!(commands.len() >= 5, "{} commands", commands.len());

    let ok = verify(dir.path(), &public, &commands, BEFORE_ANY_EXPIRY);
    assert_all_accepted(&ok, commands.len());

    // A flipped byte in the signature, a changed field, and a stripped signature.
    let mut tampered = commands[..3].to_vec();
    let mut value: serde_json::Value = serde_json::from_str(&tampered[0]).unwrap();
    let signature = value["signature"]["value"].as_str().unwrap().to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    value["signature"]["value"] = format!("{flipped}{}", &signature[1..]).into();
    tampered[0] = value.to_string();
    let mut value: serde_json::Value = serde_json::from_str(&tampered[1]).unwrap();
    value["expires_at"] = "2099-01-01T00:00:00.000Z".into();
    tampered[1] = value.to_string();
    let mut value: serde_json::Value = serde_json::from_str(&tampered[2]).unwrap();
    value.as_object_mut().unwrap().remove("signature");
    tampered[2] = value.to_string();
    let bad = verify(dir.path(), &public, &tampered, BEFORE_ANY_EXPIRY);
    assert!(!bad.status.success());
    let verdicts = text(&bad.stdout);
    assert!(
        verdicts.contains("rejected line 1 [bad_signature]"),
        "{verdicts}"
    );
    assert!(
        verdicts.contains("rejected line 2 [bad_signature]"),
        "{verdicts}"
    );
    assert!(
        verdicts.contains("rejected line 3 [unsigned]"),
        "{verdicts}"
    );

    // Another key, and a time after expiry.
    let other = dir.path().join("other");
    assert!(agentwatch(&["keygen", "--out", path(&other)], &[])
        .status
        .success());
    let wrong = verify(
        dir.path(),
        &other.with_extension("pub"),
        &commands[..1],
        BEFORE_ANY_EXPIRY,
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stdout).contains("[unknown_key]"),
        "{}",
        text(&wrong.stdout)
    );
    let late = verify(dir.path(), &public, &commands[..1], "2031-01-01T00:00:00Z");
    assert!(!late.status.success());
    assert!(
        text(&late.stdout).contains("[expired]"),
        "{}",
        text(&late.stdout)
    );
}

#[test]
fn the_signing_key_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("env");
    assert!(agentwatch(&["keygen", "--out", path(&prefix)], &[])
        .status
        .success());
    let seed = std::fs::read_to_string(prefix.with_extension("key")).unwrap();
    let seed = seed.lines().last().unwrap().to_owned();
    let output = dir.path().join("out.jsonl");
    let replay = simulate_and_replay(
        dir.path(),
        &["--output", path(&output)],
        &[("AGENTWATCH_SIGNING_KEY", &seed)],
    );
    assert!(
        !text(&replay.stderr).contains(&seed),
        "the signing key must never be logged"
    );
    let commands = commands_in(&output);
    let ok = verify(
        dir.path(),
        &prefix.with_extension("pub"),
        &commands,
        BEFORE_ANY_EXPIRY,
    );
    assert!(!commands.is_empty());
    assert_all_accepted(&ok, commands.len());
}

#[test]
fn inspect_explains_what_the_engine_believes_about_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let output = dir.path().join("out.jsonl");
    simulate_and_replay(
        dir.path(),
        &["--state", path(&state), "--output", path(&output)],
        &[],
    );
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("alert_id").is_some())
        .collect();
    let flagged = alerts
        .iter()
        .find(|a| a["detector"]["id"] == "scope_violation")
        .expect("a scope violation in the simulation");
    let agent = flagged["agent_id"].as_str().unwrap();
    let registry = dir.path().join("registry.toml");
    let out = agentwatch(
        &[
            "inspect",
            agent,
            "--state",
            path(&state),
            "--registry",
            path(&registry),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for expected in [
        format!("agent {agent}"),
        format!("owner: {}", flagged["owner"].as_str().unwrap()),
        "allowed systems:".into(),
        "systems (first seen, last seen UTC, uses):".into(),
        "credentials seen".into(),
        "active hours (UTC".into(),
        "  mon  |".into(),
        "risk:".into(),
        "recent alerts (newest last):".into(),
        "scope_violation".into(),
    ] {
        assert!(
            report.contains(&expected),
            "missing {expected:?} in\n{report}"
        );
    }
    let unknown = agentwatch(&["inspect", "nobody", "--state", path(&state)], &[]);
    assert!(unknown.status.success());
    assert!(text(&unknown.stdout).contains("never seen an event from this agent"));
    let missing = agentwatch(
        &["inspect", agent, "--state", path(&dir.path().join("nope"))],
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no agentwatch state here"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn a_bad_registry_file_is_refused_with_every_problem_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("bad.toml");
    std::fs::write(
        &registry,
        "[[agent]]\nagent_id = \"a\"\nowner = \"\"\n\n[[agent]]\nagent_id = \"b\"\nowner = \"o\"\nworking_hours = { days = [\"mon\"], start = \"9am\", end = \"17:00\" }\n",
    )
    .unwrap();
    let events = dir.path().join("e.jsonl");
    std::fs::write(&events, "").unwrap();
    let out = agentwatch(
        &[
            "replay",
            "--input",
            path(&events),
            "--registry",
            path(&registry),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[registry]"), "{stderr}");
    assert!(
        stderr.contains("bad.toml:1: agent \"a\" has no owner"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.toml:5: working_hours start"),
        "{stderr}"
    );
    let validate = agentwatch(&["validate", "--registry", path(&registry)], &[]);
    assert!(!validate.status.success());
    assert!(text(&validate.stderr).contains("bad.toml:1: agent \"a\" has no owner"));
    let good = agentwatch(
        &[
            "validate",
            "--registry",
            "schemas/examples/agent-record.example.json",
        ],
        &[],
    );
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("1 registered agent(s), no problems"));
}

#[test]
fn the_readme_worked_example_verifies_and_a_forged_copy_does_not() {
    let key = Path::new("deploy/enforcer/example.pub");
    let commands = "deploy/enforcer/example-commands.jsonl";
    let ok = agentwatch(
        &[
            "verify",
            "--public-key",
            path(key),
            "--input",
            commands,
            "--at",
            "2026-01-06T00:00:00Z",
        ],
        &[],
    );
    assert_all_accepted(&ok, 2);
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(commands)).unwrap();
    let forged: Vec<String> = original
        .lines()
        .map(|l| l.replace("\"revoke_credential\"", "\"suspend_agent\""))
        .collect();
    let bad = verify(
        dir.path(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(key),
        &forged[..1],
        "2026-01-06T00:00:00Z",
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stdout).contains("[bad_signature]"),
        "{}",
        text(&bad.stdout)
    );
}

#[test]
fn a_registry_file_is_enforced_unless_replay_is_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    std::fs::write(
        &registry,
        "[[agent]]\nagent_id = \"a\"\nowner = \"ana@example.com\"\nallowed_systems = [\"crm\"]\n",
    )
    .unwrap();
    let input = dir.path().join("events.jsonl");
    let line = |agent: &str, system: &str| {
        format!(
            r#"{{"event_id":"{agent}-1","time":"2026-01-05T10:00:00Z","agent_id":"{agent}","action":"read","system":"{system}"}}"#
        )
    };
    std::fs::write(
        &input,
        format!("{}\n{}\n", line("ghost", "crm"), line("a", "hr.payroll")),
    )
    .unwrap();
    let output = dir.path().join("alerts.jsonl");
    let detectors_of = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--input",
            path(&input),
            "--registry",
            path(&registry),
            "--output",
            path(&output),
        ];
        args.extend_from_slice(extra);
        let out = agentwatch(&args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut found: Vec<(String, String)> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<agentwatch::model::Alert>(l).ok())
            .map(|a| (a.agent_id, a.detector.id))
            .collect();
        found.sort();
        found
    };
    let pair = |a: &str, d: &str| (a.to_owned(), d.to_owned());
    assert_eq!(
        detectors_of(&[]),
        [
            pair("a", "scope_violation"),
            pair("ghost", "unregistered_agent")
        ]
    );
    assert_eq!(
        detectors_of(&["--no-enforce-registry"]),
        [pair("a", "scope_violation")],
        "the file still gives a's boundary, but ghost is not flagged for being absent"
    );
}
