//! The function reconciler's pure parts: reference checks, the `newdeploy`/`container` objects,
//! and the idle reaper of specialized `poolmgr` pods.

pub mod deploy;
pub mod reaper;
pub mod reconciler;
pub mod refs;
