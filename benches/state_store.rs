//! RocksDB state: committing dirty agents in one batch and loading cold ones.

use std::hint::black_box;

use agentwatch::model::{decode_event, Limits};
use agentwatch::sim::flat_load;
use agentwatch::state::{AgentState, StateStore};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn typical_state() -> AgentState {
    let mut state = AgentState::default();
    let lines: Vec<String> = flat_load(1, 500, 9)
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    for line in &lines {
        let event = decode_event(line.as_bytes(), &Limits::default()).unwrap();
        state.baseline.count(&event);
        state.baseline.learn(&event);
    }
    state
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let state = typical_state();
    let ids: Vec<String> = (0..1_000).map(|i| format!("agent-{i:06}")).collect();
    let mut group = c.benchmark_group("state_store");
    group.throughput(Throughput::Elements(ids.len() as u64));
    group.bench_function("commit_1000_agents", |b| {
        b.iter(|| {
            store
                .commit(ids.iter().map(|id| (id.as_str(), &state)), &[("bench", 1)])
                .unwrap()
        })
    });
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    group.bench_function("multi_get_1000_agents", |b| {
        b.iter(|| black_box(store.load_agents(&refs).unwrap()))
    });
    let missing: Vec<String> = (0..1_000).map(|i| format!("new-agent-{i:06}")).collect();
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    group.bench_function("multi_get_1000_unknown_agents", |b| {
        b.iter(|| black_box(store.load_agents(&missing).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
