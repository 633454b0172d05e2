//! Rivulet fetcher sidecar: fetches function code and specializes the runtime.
