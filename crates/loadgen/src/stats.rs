//! What a run measured: latencies in an HDR histogram, answers by status, transport
//! errors, and the report made of them.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::Report;

pub(crate) struct Stats {
    hist: Histogram<u64>,
    by_status: BTreeMap<u16, u64>,
    errors: u64,
    sent: u64,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            // 1 µs .. 10 min, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            by_status: BTreeMap::new(),
            errors: 0,
            sent: 0,
        }
    }

    pub fn record(&mut self, outcome: Result<u16, ()>, latency: Duration) {
        self.sent += 1;
        match outcome {
            Ok(status) => {
                *self.by_status.entry(status).or_default() += 1;
                let us = (latency.as_micros() as u64).clamp(1, 600_000_000);
                self.hist.saturating_record(us);
            }
            Err(()) => self.errors += 1,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.hist.add(&other.hist);
        for (s, n) in &other.by_status {
            *self.by_status.entry(*s).or_default() += n;
        }
        self.errors += other.errors;
        self.sent += other.sent;
    }

    pub fn report(&self, duration_s: f64) -> Report {
        let q = |q: f64| {
            if self.hist.is_empty() {
                0.0
            } else {
                self.hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let answered: u64 = self.by_status.values().sum();
        Report {
            sent: self.sent,
            by_status: self.by_status.clone(),
            transport_errors: self.errors,
            duration_s,
            rps: if duration_s > 0.0 {
                answered as f64 / duration_s
            } else {
                0.0
            },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1000.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_percentiles_and_rate() {
        let mut stats = Stats::new();
        for ms in 1..=100u64 {
            stats.record(Ok(200), Duration::from_millis(ms));
        }
        stats.record(Err(()), Duration::from_millis(1));
        let report = stats.report(2.0);
        assert_eq!(report.sent, 101);
        assert_eq!(report.transport_errors, 1);
        assert_eq!(report.by_status[&200], 100);
        assert!((report.rps - 50.0).abs() < 1e-9);
        assert!((report.p50_ms - 50.0).abs() < 0.1, "{}", report.p50_ms);
        assert!((report.p99_ms - 99.0).abs() < 0.1, "{}", report.p99_ms);
        assert!((report.max_ms - 100.0).abs() < 0.1, "{}", report.max_ms);
    }
}
