//! Fission's specialize wire types live in `rivulet_api::specialize` (shared with the router and
//! the reconcilers); re-exported here under the fetcher's historical path.

pub use rivulet_api::specialize::*;
