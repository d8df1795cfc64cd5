//! Decoding agent events and encoding alerts.

use std::hint::black_box;

use agentwatch::model::{decode_event, Limits};
use agentwatch::sim::flat_load;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn decode(c: &mut Criterion) {
    let lines: Vec<String> = flat_load(1_000, 1_000, 1)
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    let limits = Limits::default();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("decode_event", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(decode_event(black_box(line.as_bytes()), &limits).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
