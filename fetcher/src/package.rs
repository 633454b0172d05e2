//! The part of a Fission Package the fetcher needs: its two archives and its build status.
//!
//! A projection of the typed `rivulet_api::Package` (`spec.source`, `spec.deployment`,
//! `status.buildstatus`) with Fission's zero-value semantics: absent means empty.

use crate::checksum::Checksum;

/// Build statuses from which Fission lets the fetcher deploy `spec.deployment`.
pub const DEPLOYABLE_BUILD_STATUSES: [&str; 2] = ["succeeded", "none"];

/// Fission's `Archive`: inline bytes or a URL with an optional checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    /// `literal` or `url`; informational (the fetcher looks at which field is filled, as Fission).
    pub kind: String,
    /// Inline content.
    pub literal: Vec<u8>,
    pub url: String,
    pub checksum: Checksum,
}

impl Archive {
    pub fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.url.is_empty()
    }

    pub fn literal(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: "literal".into(),
            literal: bytes.into(),
            ..Self::default()
        }
    }

    pub fn url(url: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self {
            kind: "url".into(),
            url: url.into(),
            checksum: Checksum {
                kind: crate::checksum::SHA256.into(),
                sum: sha256.into(),
            },
            ..Self::default()
        }
    }
}

/// A Package as the fetcher sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageArchives {
    pub namespace: String,
    pub name: String,
    pub resource_version: Option<String>,
    pub source: Archive,
    pub deployment: Archive,
    /// `status.buildstatus`, empty when unset.
    pub build_status: String,
}

impl PackageArchives {
    /// The build status that decides whether `deployment` may be used. An unset status is
    /// defaulted as Fission's admission webhook does (a deployment archive → `none`, else a source
    /// archive → `pending`, else `failed`), because Rivulet may serve a Package before any
    /// controller has set it.
    pub fn effective_build_status(&self) -> &str {
        match self.build_status.as_str() {
            "" if !self.deployment.is_empty() => "none",
            "" if !self.source.is_empty() => "pending",
            "" => "failed",
            status => status,
        }
    }

    pub fn deployment_is_deployable(&self) -> bool {
        DEPLOYABLE_BUILD_STATUSES.contains(&self.effective_build_status())
    }

    /// The fetcher's view of a typed Package.
    pub fn from_package(package: &rivulet_api::Package) -> Self {
        Self {
            namespace: package.metadata.namespace.clone().unwrap_or_default(),
            name: package.metadata.name.clone().unwrap_or_default(),
            resource_version: package.metadata.resource_version.clone(),
            source: package
                .spec
                .source
                .as_ref()
                .map(Archive::from_api)
                .unwrap_or_default(),
            deployment: package
                .spec
                .deployment
                .as_ref()
                .map(Archive::from_api)
                .unwrap_or_default(),
            build_status: package
                .status
                .as_ref()
                .and_then(|s| s.buildstatus.clone())
                .unwrap_or_default(),
        }
    }
}

impl Archive {
    fn from_api(archive: &rivulet_api::Archive) -> Self {
        let checksum = archive.checksum.as_ref();
        Self {
            kind: archive.archive_type.clone().unwrap_or_default(),
            literal: archive
                .literal
                .as_ref()
                .map(|b| b.0.clone())
                .unwrap_or_default(),
            url: archive.url.clone().unwrap_or_default(),
            checksum: Checksum {
                kind: checksum
                    .and_then(|c| c.checksum_type.clone())
                    .unwrap_or_default(),
                sum: checksum.and_then(|c| c.sum.clone()).unwrap_or_default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Decodes JSON as the typed API does (the path KubeSource takes), then projects it.
    fn decode(mut object: Value) -> PackageArchives {
        object["apiVersion"] = json!("fission.io/v1");
        object["kind"] = json!("Package");
        object["metadata"] = json!({"name": "p", "namespace": "ns", "resourceVersion": "12"});
        let package: rivulet_api::Package = serde_json::from_value(object).unwrap();
        PackageArchives::from_package(&package)
    }

    #[test]
    fn decodes_a_literal_package_as_fission_writes_it() {
        let object = json!({
            "spec": {
                "environment": {"name": "python", "namespace": "default"},
                "source": {"checksum": {}},
                "deployment": {"type": "literal", "literal": "ZGVmIG1haW4oKTogcmV0dXJuICJoaSIK", "checksum": {}}
            },
            "status": {"buildstatus": "succeeded", "lastUpdateTimestamp": "2026-01-01T00:00:00Z"}
        });
        let pkg = decode(object);
        assert_eq!(pkg.deployment.literal, b"def main(): return \"hi\"\n");
        assert!(pkg.source.is_empty());
        assert_eq!(pkg.build_status, "succeeded");
        assert_eq!(pkg.resource_version.as_deref(), Some("12"));
        assert!(pkg.deployment_is_deployable());
    }

    #[test]
    fn decodes_a_url_package_with_checksum() {
        let object = json!({"spec": {"environment": {"name": "python"}, "deployment": {
            "type": "url", "url": "http://storagesvc.fission/v1/archive?id=abc",
            "checksum": {"type": "sha256", "sum": "00ff"}}}, "status": {"buildstatus": "none"}});
        let pkg = decode(object);
        assert_eq!(
            pkg.deployment,
            Archive::url("http://storagesvc.fission/v1/archive?id=abc", "00ff")
        );
    }

    #[test]
    fn build_status_gate() {
        let mut pkg = PackageArchives {
            deployment: Archive::literal(b"x".to_vec()),
            ..PackageArchives::default()
        };
        for (status, ok) in [
            ("succeeded", true),
            ("none", true),
            ("", true),
            ("pending", false),
            ("running", false),
            ("failed", false),
        ] {
            pkg.build_status = status.into();
            assert_eq!(pkg.deployment_is_deployable(), ok, "{status:?}");
        }
        pkg.deployment = Archive::default();
        pkg.build_status = String::new();
        assert_eq!(pkg.effective_build_status(), "failed");
        pkg.source = Archive::literal(b"src".to_vec());
        assert_eq!(pkg.effective_build_status(), "pending");
    }

    #[test]
    fn absent_archives_and_status_are_empty() {
        let pkg = decode(json!({"spec": {"environment": {"name": "python"}}}));
        assert!(pkg.source.is_empty() && pkg.deployment.is_empty());
        assert_eq!(pkg.build_status, "");
        assert_eq!(pkg.name, "p");
    }
}
