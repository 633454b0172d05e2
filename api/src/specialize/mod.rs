//! Fission's specialize protocol, shared by the fetcher, the router and the reconcilers: the
//! wire types a pod's fetcher receives ([`FunctionSpecializeRequest`] and its parts), the
//! request built for one function ([`FunctionSpecializeRequest::for_function`]) and the
//! fetcher's bearer token ([`token`]).

mod request;
pub mod token;
mod wire;

pub use request::{CODE_DIR, target_filename};
pub use token::{FetcherKey, FetcherKeyError};
pub use wire::{
    FetchRequest, FetchType, FunctionFetchRequest, FunctionLoadRequest, FunctionSpecializeRequest,
    ObjectReference,
};
