//! localcluster: an embedded Kubernetes API server for one machine.
