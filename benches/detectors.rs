//! Each detector's score + learn on a warmed agent.
//!
//! Each detector is warmed on the first half of one agent's events, then measured on the
//! second half from a copy of the warmed state, so event time moves forward as it does
//! in production (replaying old events would pile them into one window).

use std::hint::black_box;

use agentwatch::detect::{DetectorSet, Identity, Observation};
use agentwatch::model::{decode_event, Limits};
use agentwatch::sim::flat_load;
use agentwatch::state::Baseline;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn detectors(c: &mut Criterion) {
    let lines: Vec<String> = flat_load(1, 8_192, 3)
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_event(l.as_bytes(), &Limits::default()).unwrap())
        .collect();
    let (warm, measured) = events.split_at(events.len() / 2);
    let set = DetectorSet::builtin().unwrap();
    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(measured.len() as u64));
    for instance in set.iter() {
        let mut baseline = Baseline::default();
        let mut state = instance.detector.new_state();
        for event in warm {
            baseline.count(event);
            baseline.learn(event);
            let obs = Observation {
                event,
                baseline: &baseline,
                identity: Identity::default(),
            };
            instance.detector.score(&obs, &mut state);
            instance.detector.learn(&obs, &mut state, false);
        }
        group.bench_function(&instance.id, |b| {
            b.iter_batched_ref(
                || state.clone(),
                |state| {
                    for event in measured {
                        let obs = Observation {
                            event,
                            baseline: &baseline,
                            identity: Identity::default(),
                        };
                        let finding = instance.detector.score(&obs, state);
                        let anomalous = black_box(finding).is_some_and(|f| f.score() > 0.5);
                        instance.detector.learn(&obs, state, anomalous);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, detectors);
criterion_main!(benches);
