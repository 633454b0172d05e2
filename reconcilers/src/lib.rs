//! Rivulet's reconcilers. Each reconciler is a pipeline with I/O only at its ends:
//! fetch → validate (pure, `rivulet_api::validation`) → build desired objects (pure, this crate's
//! builder modules) → server-side apply → status.
//!
//! Each folder is one reconciler ([`environment`], [`function`], [`package`], [`httptrigger`],
//! [`offloading`]); [`triggers`] holds the trigger tasks and the mqtrigger reconciler;
//! [`support`] the plumbing they share (caches, metrics, leader election, health); [`all`]
//! starts the set. The pure parts live in their own modules so they can be tested on fixtures
//! without a cluster: [`placement`] (which clusters hold how many warm pods), the pool pod and
//! plan of [`environment`], the objects of [`function`].

pub mod all;
pub mod environment;
pub mod fetcher_access;
pub mod function;
pub mod hash;
pub mod httptrigger;
pub mod merge;
pub mod offloading;
pub mod package;
pub mod placement;
pub mod support;
pub mod triggers;
