//! One `wrk --latency` run and its report, shared by the benchmarks. Each benchmark reads the
//! fields it needs.
#![allow(dead_code, clippy::cast_precision_loss)]

use std::process::Command;

/// What one wrk run measured.
pub struct Report {
    /// Requests completed.
    pub requests: u64,
    /// `Requests/sec:`.
    pub requests_per_second: f64,
    /// Latency percentiles as wrk prints them (`1.88ms`).
    pub p50: String,
    pub p99: String,
    /// `Non-2xx or 3xx responses:` (0 when wrk prints none).
    pub non_2xx: u64,
    /// `Socket errors:` as printed, `None` when there were none.
    pub socket_errors: Option<String>,
}

impl Report {
    /// p50 in microseconds.
    pub fn p50_us(&self) -> f64 {
        micros(&self.p50)
    }

    /// p99 in microseconds.
    pub fn p99_us(&self) -> f64 {
        micros(&self.p99)
    }

    /// Requests that failed: non-2xx answers plus socket errors (connect, read, write, timeout).
    pub fn errors(&self) -> u64 {
        let socket: u64 = self.socket_errors.as_deref().map_or(0, |s| {
            s.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
        self.non_2xx + socket
    }

    /// Failed requests over all attempted ones.
    pub fn error_rate(&self) -> f64 {
        let errors = self.errors() as f64;
        let attempted = self.requests as f64 + errors - self.non_2xx as f64;
        if attempted == 0.0 {
            0.0
        } else {
            errors / attempted
        }
    }
}

/// A wrk duration (`250.00us`, `1.88ms`, `1.02s`, `2.00m`) in microseconds.
pub fn micros(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("wrk duration {text:?}"));
    value
        * match unit {
            "us" => 1.0,
            "ms" => 1_000.0,
            "s" => 1_000_000.0,
            "m" => 60_000_000.0,
            other => panic!("wrk duration unit {other:?} in {text:?}"),
        }
}

/// Runs `wrk <args> --latency <url>` and reads its report; panics with wrk's output when the
/// report is incomplete.
pub fn run(args: &[&str], url: &str) -> Report {
    let out = Command::new("wrk")
        .args(args)
        .args(["--latency", url])
        .output()
        .expect("wrk is not installed: sudo apt-get install -y wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let required = |prefix: &str| {
        field(prefix).unwrap_or_else(|| panic!("no {prefix} in wrk output:\n{text}"))
    };
    let requests = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.to_owned())
        })
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    Report {
        requests: requests.parse().unwrap(),
        requests_per_second: required("Requests/sec:").parse().unwrap(),
        p50: required("50%"),
        p99: required("99%"),
        non_2xx: field("Non-2xx or 3xx responses:").map_or(0, |n| n.parse().unwrap()),
        socket_errors: field("Socket errors:"),
    }
}
