//! Structural OpenAPI v3 schemas of CustomResourceDefinitions: structural checks, validation, pruning, defaulting.
