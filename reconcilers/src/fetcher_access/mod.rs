//! What every namespace holding pool or newdeploy pods needs for their fetcher, as Fission
//! creates it per function namespace: the ServiceAccount the pods run as, a RoleBinding of it to
//! the ClusterRole `rivulet-fetcher` (get Packages, Secrets, ConfigMaps), and a NetworkPolicy
//! that lets only the router reach the fetcher port 8000 (docs/reconcilers.md "fetcher-access").
//!
//! The three objects are owned by every Environment and newdeploy Function of the namespace (no
//! controller owner, no blockOwnerDeletion): Kubernetes' garbage collector deletes them once the
//! last of those goes, and drops the reference of each one that goes before.

pub mod objects;
pub mod reconciler;
