//! What `rivulet controller` needs around the reconcilers: [`metrics`] (Prometheus, per
//! reconciler), [`leader`] election on a Lease (only the leader reconciles), and the [`health`]
//! endpoints (`/healthz`, `/readyz`, `/metrics`).

pub mod health;
pub mod leader;
pub mod metrics;
pub mod resync;

pub use health::{Health, HealthServer};
pub use leader::{Election, LeaseConfig};
pub use metrics::Metrics;
