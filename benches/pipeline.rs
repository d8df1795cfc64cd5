//! The whole replay path: decode, cache/RocksDB state, three detectors, decide, commit.

use agentwatch::app::replay::{run_replay, ReplayConfig, ReplaySinks};
use agentwatch::app::simulate::write_events;
use agentwatch::detect::DetectorSet;
use agentwatch::pipeline::{Engine, EngineOptions};
use agentwatch::sim::flat_load;
use agentwatch::state::StateStore;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const EVENTS: u64 = 200_000;
const AGENTS: usize = 10_000;

fn pipeline(c: &mut Criterion) {
    let mut input = Vec::new();
    write_events(flat_load(AGENTS, EVENTS, 1), &mut input, &mut |_| {}).unwrap();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("replay_200k_events_10k_agents", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let engine = Engine::new(
                    DetectorSet::builtin().unwrap(),
                    StateStore::open(dir.path()).unwrap(),
                    EngineOptions::default(),
                )
                .unwrap();
                (dir, engine)
            },
            |(dir, mut engine)| {
                run_replay(
                    &mut engine,
                    input.as_slice(),
                    &ReplayConfig::default(),
                    ReplaySinks {
                        output: &mut std::io::sink(),
                        scores: None,
                    },
                    &mut |_| {},
                )
                .unwrap();
                drop(engine);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
