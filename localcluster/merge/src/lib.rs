//! Kubernetes patch semantics: JSON merge patch, JSON patch, strategic merge patch, server-side apply.
