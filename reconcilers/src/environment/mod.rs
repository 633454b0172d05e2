//! The environment reconciler's pure parts: the warm-pool pod and the plan that converges a pool.

pub mod fetcher_token;
pub mod offloaded;
pub mod plan;
pub mod pool_pod;
pub mod reconciler;
pub mod refill;
pub mod status;
