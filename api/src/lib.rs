//! Typed `fission.io/v1` API.
