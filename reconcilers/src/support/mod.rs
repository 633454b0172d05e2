//! The plumbing every reconciler shares, so that a reconciler's own folder holds only its
//! pipeline: Events, status apply, retries and the controller loop ([`common`]); the [`shared`] caches (one watch per kind for the whole set) and waiting for a
//! cache's initial list ([`cache`]); [`metrics`] (Prometheus, per reconciler), [`leader`]
//! election on a Lease (only the leader reconciles), the [`health`] endpoints (`/healthz`,
//! `/readyz`, `/metrics`) and the periodic [`resync`].

pub mod cache;
pub mod common;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod resync;
pub mod shared;

pub use health::{Health, HealthServer};
pub use leader::{Election, LeaseConfig};
pub use metrics::Metrics;
