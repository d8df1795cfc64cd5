//! The floor of the replay benchmark: read a JSONL file with the same line reader and
//! decode every line with the same decoder as `agentwatch replay`, and do nothing else.
//! `scripts/bench.sh` divides replay's events/s by this one's, measured in the same run,
//! so the ratio says how much the engine (state, detectors, decisions, RocksDB) costs
//! on top of reading and decoding, whatever the machine's speed that day.
//!
//! ```text
//! cargo run --release --example decode_only -- FILE
//! ```

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use agentwatch::drive::lines::{LineBatch, LineReader};
use agentwatch::drive::Records;
use agentwatch::model::{decode_event, Limits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        return Err("usage: decode_only FILE".into());
    };
    let started = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut lines = LineReader::new(reader);
    let mut batch = LineBatch::default();
    let limits = Limits::default();
    let (mut events, mut invalid, mut checksum) = (0u64, 0u64, 0i64);
    while lines.fill(&mut batch, 1_024)? > 0 {
        for index in 0..batch.len() {
            match decode_event(batch.payload(index), &limits) {
                // Fold a field in so the decode cannot be optimised away.
                Ok(event) => {
                    events += 1;
                    checksum = checksum.wrapping_add(event.time_ms);
                }
                Err(_) => invalid += 1,
            }
        }
        batch.clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "decoded {events} events ({invalid} invalid) in {seconds:.3} s ({:.0} events/s; checksum {checksum})",
        events as f64 / seconds.max(1e-9)
    );
    Ok(())
}
