//! The comparison the quality bar is set against: a hand-written per-agent z-score
//! detector on the same simulated traffic as `tests/quality.rs`.
//!
//! Per agent it keeps running mean and standard deviation (Welford) of log bytes per
//! event and of calls per minute (every minute since the agent's first event, idle ones
//! as zeros), and the set of systems seen. After 100 events it flags z > 4 on either, or
//! any system it has not seen, with a one-hour cooldown per agent and check, just like
//! agentwatch's instances. Run with
//!
//! ```sh
//! cargo run --release --example zscore_baseline
//! ```

use std::collections::{HashMap, HashSet};

use agentwatch::eval::{AlertMark, Evaluation};
use agentwatch::model::time::parse_rfc3339;
use agentwatch::model::EventTime;
use agentwatch::sim::{SimConfig, Simulation};

#[derive(Default)]
struct Welford {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn z(&self, x: f64) -> f64 {
        let sd = (self.m2 / self.n.max(1.0)).sqrt().max(1e-9);
        (x - self.mean) / sd
    }

    fn add(&mut self, x: f64) {
        self.n += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (x - self.mean);
    }
}

#[derive(Default)]
struct Agent {
    events: u64,
    bytes: Welford,
    per_minute: Welford,
    minute: i64,
    count: f64,
    systems: HashSet<String>,
    last_alert: HashMap<&'static str, i64>,
}

fn main() {
    let simulation = Simulation::new(SimConfig {
        agents: 200,
        days: 14,
        seed: 42,
        attacks: true,
        ..SimConfig::default()
    });
    let mut agents: HashMap<String, Agent> = HashMap::new();
    let mut marks = Vec::new();
    let mut events = 0u64;
    for event in simulation.events() {
        events += 1;
        let time = match &event.time {
            EventTime::Rfc3339(text) => parse_rfc3339(text).unwrap_or_default(),
            EventTime::EpochMillis(ms) => *ms,
        };
        let agent = agents.entry(event.agent_id.clone()).or_default();
        let bytes = ((event.bytes_in + event.bytes_out) as f64).ln_1p();
        let minute = time / 60_000;
        if minute != agent.minute {
            if agent.events > 0 {
                agent.per_minute.add(agent.count);
                for _ in agent.minute + 1..minute {
                    agent.per_minute.add(0.0);
                }
            }
            agent.minute = minute;
            agent.count = 0.0;
        }
        agent.count += 1.0;
        let mut fired = Vec::new();
        if agent.events >= 100 {
            if agent.bytes.z(bytes) > 4.0 {
                fired.push("bytes");
            }
            if agent.per_minute.z(agent.count) > 4.0 {
                fired.push("rate");
            }
            if !agent.systems.contains(&event.system) {
                fired.push("new_system");
            }
        }
        for check in fired {
            let last = agent.last_alert.get(check).copied().unwrap_or(i64::MIN / 2);
            if time - last >= 3_600_000 {
                agent.last_alert.insert(check, time);
                marks.push(AlertMark {
                    agent_id: event.agent_id.clone(),
                    time_ms: time,
                    detector: format!("zscore-{check}"),
                });
            }
        }
        agent.events += 1;
        agent.bytes.add(bytes);
        agent.systems.insert(event.system.clone());
    }
    match Evaluation::new(&simulation.labels(), &marks, events) {
        Ok(evaluation) => print!(
            "naive per-agent z-score on {events} events\n{}",
            evaluation.render()
        ),
        Err(e) => eprintln!("error: {e}"),
    }
}
