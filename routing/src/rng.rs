//! A tiny random source for weighted (canary) routing and for deterministic tests.
//!
//! Canary weights need a uniform integer per request, not cryptographic randomness, so a
//! SplitMix64 generator (seeded from the process's `RandomState` keys) is enough and adds no
//! dependency.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Source of uniform integers for weighted backend choice.
pub trait WeightRng {
    /// A uniformly distributed integer in `0..bound`; `bound` is at least 1.
    fn below(&mut self, bound: u32) -> u32;
}

/// SplitMix64: small, fast, statistically good enough for load splitting and deterministic for a
/// given seed (which is what tests need).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator with a fixed seed (reproducible sequences in tests).
    pub fn seeded(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded from the per-process random keys of `RandomState`.
    pub fn from_entropy() -> Self {
        Self::seeded(entropy())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl WeightRng for SplitMix64 {
    fn below(&mut self, bound: u32) -> u32 {
        // Lemire's multiply-shift: uniform enough for bounds this small (weights ≤ a few
        // hundred), and branch-free.
        let wide = (self.next_u64() >> 32) * u64::from(bound.max(1));
        u32::try_from(wide >> 32).unwrap_or(0)
    }
}

/// A per-thread [`SplitMix64`], seeded once per thread: what the request path uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRng;

thread_local! {
    static THREAD_STATE: Cell<u64> = Cell::new(entropy());
}

impl WeightRng for ThreadRng {
    fn below(&mut self, bound: u32) -> u32 {
        THREAD_STATE.with(|state| {
            let mut rng = SplitMix64::seeded(state.get());
            let value = rng.below(bound);
            state.set(rng.state);
            value
        })
    }
}

fn entropy() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x5EED);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat() {
        let mut a = SplitMix64::seeded(7);
        let mut b = SplitMix64::seeded(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::seeded(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = rng.below(10);
            assert!(v < 10);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1000; a broken generator would leave some far off.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn thread_rng_is_in_range() {
        let mut rng = ThreadRng;
        for _ in 0..1000 {
            assert!(rng.below(3) < 3);
        }
    }
}
