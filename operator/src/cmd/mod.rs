//! One module per subcommand.

pub mod common;
pub mod controller;
pub mod crds;
pub mod fetcher;
pub mod in_cluster;
pub mod localcluster;
pub mod router;
pub mod storage;
pub mod up;
