//! Each detector's score + learn on a warmed agent.
//!
//! Each detector is warmed on the first half of one agent's events, then measured on the
//! second half from a copy of the warmed state, so event time moves forward as it does
//! in production (replaying old events would pile them into one window).

use std::hint::black_box;

use agentwatch::detect::{DetectorSet, Identity, Observation, Verdict};
use agentwatch::model::{decode_event, Limits};
use agentwatch::sim::flat_load;
use agentwatch::state::{Baseline, PendingBaseline};
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
    let pending = PendingBaseline::default();
    for instance in set.iter() {
        let mut baseline = Baseline::default();
        let mut state = instance.detector.new_state();
        for event in warm {
            baseline.count(event);
            baseline.learn(event);
            let obs = Observation {
                event,
                baseline: &baseline,
                pending: &pending,
                identity: Identity::default(),
            };
            instance.detector.score(&obs, &mut state);
            instance.detector.learn(&obs, &mut state, Verdict::Normal);
        }
        group.bench_function(&instance.id, |b| {
            b.iter_batched_ref(
                || state.clone(),
                |state| {
                    for event in measured {
                        let obs = Observation {
                            event,
                            baseline: &baseline,
                            pending: &pending,
                            identity: Identity::default(),
                        };
                        let finding = instance.detector.score(&obs, state);
                        let verdict = if black_box(finding).is_some_and(|f| f.score() > 0.5) {
                            Verdict::Flagged
                        } else {
                            Verdict::Normal
                        };
                        instance.detector.learn(&obs, state, verdict);
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
