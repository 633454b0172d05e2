//! Rivulet reconcilers: one module per reconciler (filled by the reconcilers issue).
