//! Rivulet's reconcilers. Each reconciler is a pipeline with I/O only at its ends:
//! fetch → validate (pure, `rivulet_api::validation`) → build desired objects (pure, this crate's
//! builder modules) → server-side apply → status.
//!
//! The pure parts live in their own modules so they can be tested on fixtures without a cluster:
//! [`placement`] (which clusters hold how many warm pods), [`environment`] (the pool pod and the
//! plan that converges a pool).

pub mod all;
pub mod delivery;
pub mod environment;
pub mod function;
pub mod hash;
pub mod httptrigger;
pub mod kubewatcher;
pub mod merge;
pub mod mqtrigger;
pub mod offloading;
pub mod package;
pub mod placement;
pub mod support;
pub mod timetrigger;
pub mod trigger_status;
pub mod trigger_tasks;

/// The old name of [`support`], kept only for `operator/src/cmd/up.rs` until it says `support`
/// (issue 17.5: "runtime" means an Environment's language runtime container).
#[doc(hidden)]
pub use support as runtime;
