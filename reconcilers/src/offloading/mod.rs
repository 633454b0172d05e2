//! The offloading reconciler: Liqo `NamespaceOffloading` for the namespaces that hold remotely
//! placed warm pools (ARCHITECTURE §6, reference/liqo.md §1).
//!
//! One reconcile per namespace. Pure parts: [`desired`] (what the namespace's Environments ask
//! for), [`decision`] (create, update, adopt, leave, delete). I/O in [`reconciler`].

pub mod decision;
pub mod desired;
pub mod reconciler;

pub use desired::{MappingStrategy, OffloadingConfig};
pub use reconciler::{discover, run, try_discover};
