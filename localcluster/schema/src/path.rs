//! Field paths printed the way apimachinery's `field.Path` prints them.
//!
//! Children are joined with `.`, map keys are written `[key]` and list indices `[0]`, so a schema
//! path reads `spec.validation.openAPIV3Schema.properties[spec].type` and an object path reads
//! `spec.containers[0].name`.

use std::fmt;

/// A field path; cheap to extend because every step returns a new value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The empty path (the object itself).
    pub fn root() -> Self {
        Self(String::new())
    }

    /// A path starting with `name` (which may itself contain dots, as upstream allows).
    pub fn new(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// `self.name`.
    #[must_use]
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// `self[key]`: a map key, as schema paths write property names.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// `self[index]`: a list index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root (empty) path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_apimachinery() {
        let p = FieldPath::new("spec")
            .child("validation")
            .child("openAPIV3Schema")
            .child("properties")
            .key("spec")
            .child("type");
        assert_eq!(
            p.as_str(),
            "spec.validation.openAPIV3Schema.properties[spec].type"
        );
        let q = FieldPath::root()
            .child("spec")
            .child("containers")
            .index(0)
            .child("name");
        assert_eq!(q.to_string(), "spec.containers[0].name");
        assert!(FieldPath::root().is_root());
        assert_eq!(FieldPath::root().index(3).as_str(), "[3]");
    }
}
