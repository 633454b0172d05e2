//! Whether a function version's pods still serve at their unloaded pace: the gate on escalation.
//!
//! A queued request that waited its patience starts a pod of its own (escalation). That helps
//! only while the pods are the bottleneck. When each request takes far longer than it did
//! unloaded, the bottleneck is elsewhere — the node's CPU, a backend the function calls — and a
//! new pod only competes for it: 500 connections to hello on 2 cores kept adding Python pods
//! (29 in 10 s) and served 2,550 req/s at p99 286 ms, where 9 pods had served 3,804 req/s
//! (docs/performance.md, "Overload"). So escalation waits while the recent service time is more
//! than `rivulet router --max-slowdown` ([`DEFAULT_MAX_SLOWDOWN`]) times the best seen; the queue
//! keeps being served by the pods there are.
//!
//! Service time is a lease's life (grant to release), smoothed like TCP's round-trip time. The
//! best is the lowest smoothed value once [`WARM_UP`] samples are in, so a pod's slow first call
//! or one lucky request does not set it. A function whose calls are slow but steady (a 1.5 s
//! sleep) is never slowed: its ratio stays near 1 and it scales out up to `concurrency`.

use std::time::Duration;

/// Recent service time more than this many times the best: the pods are slowed down, when the
/// router is not told otherwise.
pub const DEFAULT_MAX_SLOWDOWN: u32 = 2;

/// Samples smoothed before the best is taken; also the smoothing weight's inverse (1/16: a
/// smoothed value spans about 30 calls, steady against single outliers).
pub const WARM_UP: u32 = 16;

/// Smoothed service time of one function version's requests.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    recent: Option<Duration>,
    best: Option<Duration>,
    samples: u32,
}

impl Pace {
    /// One request finished after `took` on its pod.
    pub fn record(&mut self, took: Duration) {
        let recent = match self.recent {
            None => took,
            // recent += (took - recent) / WARM_UP, in nanoseconds to keep it exact enough.
            Some(recent) => {
                let (r, t) = (recent.as_nanos(), took.as_nanos());
                let next = (r * u128::from(WARM_UP - 1) + t) / u128::from(WARM_UP);
                Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
            }
        };
        self.recent = Some(recent);
        self.samples = self.samples.saturating_add(1);
        if self.samples >= WARM_UP {
            self.best = Some(self.best.map_or(recent, |best| best.min(recent)));
        }
    }

    /// Whether requests now take more than `max` times their best (never before the best is
    /// known; never with `max` 0).
    pub fn slowed(&self, max: u32) -> bool {
        match (self.recent, self.best) {
            (Some(recent), Some(best)) if max > 0 => recent > best * max,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn after(samples: &[Duration]) -> Pace {
        let mut pace = Pace::default();
        for &took in samples {
            pace.record(took);
        }
        pace
    }

    #[test]
    fn steady_calls_are_never_slowed_however_slow() {
        assert!(!after(&[1500 * MS; 200]).slowed(DEFAULT_MAX_SLOWDOWN));
        assert!(!after(&[MS; 200]).slowed(DEFAULT_MAX_SLOWDOWN));
    }

    #[test]
    fn nothing_is_slowed_before_the_warm_up() {
        let mut samples = vec![MS; 5];
        samples.extend([100 * MS; WARM_UP as usize - 6]);
        assert!(!after(&samples).slowed(DEFAULT_MAX_SLOWDOWN), "no best yet");
    }

    #[test]
    fn calls_three_times_slower_than_their_best_are_slowed_and_recover() {
        let mut pace = after(&[MS; 50]);
        for _ in 0..100 {
            pace.record(3 * MS);
        }
        assert!(pace.slowed(DEFAULT_MAX_SLOWDOWN));
        assert!(!pace.slowed(0), "0: the gate is off");
        assert!(!pace.slowed(4), "3x is within 4x");
        for _ in 0..100 {
            pace.record(MS);
        }
        assert!(
            !pace.slowed(DEFAULT_MAX_SLOWDOWN),
            "back at the unloaded pace"
        );
    }

    #[test]
    fn one_outlier_does_not_slow_nor_set_the_best() {
        let mut pace = after(&[10 * MS; 50]);
        pace.record(100 * MS);
        assert!(
            !pace.slowed(DEFAULT_MAX_SLOWDOWN),
            "one 100 ms call among 10 ms ones"
        );
        for _ in 0..3 {
            pace.record(Duration::ZERO);
        }
        for _ in 0..50 {
            pace.record(15 * MS);
        }
        assert!(
            !pace.slowed(DEFAULT_MAX_SLOWDOWN),
            "1.5x of the best, not 2x: three zeros did not lower it much"
        );
    }
}
