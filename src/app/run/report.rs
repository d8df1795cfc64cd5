//! What a run of the service did, for its final summary line and for load tests.

use std::time::Duration;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Records measured.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl LatencySummary {
    /// Percentiles of an HDR histogram of microseconds.
    pub fn of(histogram: &hdrhistogram::Histogram<u64>) -> Self {
        LatencySummary {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Records consumed (valid and invalid).
    pub consumed: u64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Alerts published.
    pub alerts: u64,
    /// Commands published.
    pub commands: u64,
    /// Records skipped because a state restored from the changelog already held them
    /// (its writer stopped between a commit's states and its position record), or
    /// second copies forwarded by a rekey router.
    pub already_applied: u64,
    /// From the first record received to the last one processed.
    pub busy: Duration,
    /// Record timestamp to decision, over the whole run.
    pub latency: LatencySummary,
}

impl RunReport {
    /// Records per second while records were flowing.
    pub fn events_per_second(&self) -> f64 {
        self.consumed as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    /// One line for people.
    pub fn render(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "consumed {} records in {:.2}s ({:.0}/s), {} dead letters, {} alerts, {} commands; \
             record-to-decision latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.consumed,
            self.busy.as_secs_f64(),
            self.events_per_second(),
            self.dead_letters,
            self.alerts,
            self.commands,
            ms(self.latency.p50_us),
            ms(self.latency.p99_us),
            ms(self.latency.p999_us),
            ms(self.latency.max_us),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rate_and_percentiles() {
        let report = RunReport {
            consumed: 1000,
            busy: Duration::from_millis(500),
            latency: LatencySummary {
                count: 1000,
                p50_us: 1500,
                p99_us: 9000,
                p999_us: 12000,
                max_us: 20000,
            },
            ..RunReport::default()
        };
        let line = report.render();
        assert!(
            line.starts_with("consumed 1000 records in 0.50s (2000/s)"),
            "{line}"
        );
        assert!(
            line.contains("p50 1.50 ms, p99 9.00 ms, p99.9 12.00 ms, max 20.00 ms"),
            "{line}"
        );
    }
}
