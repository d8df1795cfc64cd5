//! /metrics over real HTTP matches what was processed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
use agentwatch::app::simulate::SimReader;
use agentwatch::sim::{SimConfig, Simulation};
use agentwatch::telemetry::{Metrics, MetricsServer};

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{body}"))
}

#[test]
fn scraped_counters_match_what_was_processed() {
    let metrics = Arc::new(Metrics::new());
    let server = MetricsServer::start("127.0.0.1:0", Arc::clone(&metrics)).unwrap();
    assert_eq!(get(server.address(), "/healthz").0, 200);
    assert_eq!(get(server.address(), "/readyz").0, 503);
    server.set_ready(true);
    assert_eq!(get(server.address(), "/readyz").0, 200);
    assert_eq!(get(server.address(), "/nope").0, 404);

    let simulation = Simulation::new(SimConfig {
        agents: 30,
        days: 7,
        seed: 2,
        attacks: true,
        ..SimConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::engine(dir.path()).with_metrics(Arc::clone(&metrics));
    let mut input: Vec<u8> = Vec::new();
    std::io::copy(&mut SimReader::simulation(&simulation), &mut input).unwrap();
    input.extend(b"garbage\n{\"event_id\":\"x\"}\n");
    let config = ReplayConfig {
        metrics: Some(Arc::clone(&metrics)),
        ..ReplayConfig::default()
    };
    let summary = run_replay(
        &mut engine,
        input.as_slice(),
        &config,
        ReplaySinks {
            output: &mut std::io::sink(),
            scores: None,
        },
        &mut |_| {},
    )
    .unwrap();

    let (status, body) = get(server.address(), "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(&body, "agentwatch_events_total{result=\"processed\"}"),
        summary.events as f64
    );
    assert_eq!(
        sample(&body, "agentwatch_events_total{result=\"invalid\"}"),
        2.0
    );
    assert_eq!(
        sample(&body, "agentwatch_decode_errors_total{code=\"not_json\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &body,
            "agentwatch_decode_errors_total{code=\"missing_field\"}"
        ),
        1.0
    );
    let alerts: f64 = ["info", "low", "medium", "high", "critical"]
        .iter()
        .map(|s| {
            sample(
                &body,
                &format!("agentwatch_alerts_total{{severity=\"{s}\"}}"),
            )
        })
        .sum();
    assert_eq!(alerts, summary.alerts() as f64);
    assert!(summary.alerts() > 0);
    assert!(sample(&body, "agentwatch_flush_duration_seconds_count") >= 1.0);
    assert_eq!(sample(&body, "agentwatch_agents_tracked"), 30.0);
    assert!(!body.contains("agent_id"), "agent ids must never be labels");
}
