//! One module per subcommand.

pub mod crds;
pub mod fetcher;
pub mod router;
