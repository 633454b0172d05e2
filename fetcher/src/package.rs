//! The part of a Fission Package the fetcher needs: its two archives and its build status.
//!
//! Decoded from the Package's JSON (`[F] types.go`: `spec.source`, `spec.deployment`,
//! `status.buildstatus`), so it works whether the object comes from a typed or a dynamic client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checksum::Checksum;

/// Build statuses from which Fission lets the fetcher deploy `spec.deployment`.
pub const DEPLOYABLE_BUILD_STATUSES: [&str; 2] = ["succeeded", "none"];

/// Fission's `Archive`: inline bytes or a URL with an optional checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// `literal` or `url`; informational (the fetcher looks at which field is filled, as Fission).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Inline content; base64 in JSON (Go `[]byte`).
    #[serde(default, with = "base64_bytes")]
    pub literal: Vec<u8>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
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
    /// defaulted as Fission's admission webhook does (`none` when there is a deployment archive,
    /// else `pending`), because Rivulet may serve a Package before any controller has set it.
    pub fn effective_build_status(&self) -> &str {
        match self.build_status.as_str() {
            "" if !self.deployment.is_empty() => "none",
            "" => "pending",
            status => status,
        }
    }

    pub fn deployment_is_deployable(&self) -> bool {
        DEPLOYABLE_BUILD_STATUSES.contains(&self.effective_build_status())
    }

    /// Decodes a Package object (`{"metadata":…,"spec":…,"status":…}`).
    pub fn from_object(namespace: &str, name: &str, object: &Value) -> Result<Self, String> {
        #[derive(Deserialize, Default)]
        struct Spec {
            #[serde(default)]
            source: Option<Archive>,
            #[serde(default)]
            deployment: Option<Archive>,
        }
        #[derive(Deserialize, Default)]
        struct Status {
            #[serde(default)]
            buildstatus: Option<String>,
        }
        let spec: Spec = match object.get("spec") {
            Some(spec) if !spec.is_null() => {
                Spec::deserialize(spec).map_err(|e| format!("spec: {e}"))?
            }
            _ => Spec::default(),
        };
        let status: Status = match object.get("status") {
            Some(status) if !status.is_null() => {
                Status::deserialize(status).map_err(|e| format!("status: {e}"))?
            }
            _ => Status::default(),
        };
        Ok(Self {
            namespace: namespace.into(),
            name: name.into(),
            resource_version: object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            source: spec.source.unwrap_or_default(),
            deployment: spec.deployment.unwrap_or_default(),
            build_status: status.buildstatus.unwrap_or_default(),
        })
    }
}

/// Go's `[]byte` JSON form: standard base64 with padding, `null` for empty.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(Vec::new());
        };
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| serde::de::Error::custom(format!("literal is not valid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_a_literal_package_as_fission_writes_it() {
        let object = json!({
            "apiVersion": "fission.io/v1", "kind": "Package",
            "metadata": {"name": "hello-pkg", "namespace": "default", "resourceVersion": "12"},
            "spec": {
                "environment": {"name": "python", "namespace": "default"},
                "source": {"checksum": {}},
                "deployment": {"type": "literal", "literal": "ZGVmIG1haW4oKTogcmV0dXJuICJoaSIK", "checksum": {}}
            },
            "status": {"buildstatus": "succeeded", "lastUpdateTimestamp": "2026-01-01T00:00:00Z"}
        });
        let pkg = PackageArchives::from_object("default", "hello-pkg", &object).unwrap();
        assert_eq!(pkg.deployment.literal, b"def main(): return \"hi\"\n");
        assert!(pkg.source.is_empty());
        assert_eq!(pkg.build_status, "succeeded");
        assert_eq!(pkg.resource_version.as_deref(), Some("12"));
        assert!(pkg.deployment_is_deployable());
    }

    #[test]
    fn decodes_a_url_package_with_checksum() {
        let object = json!({"spec": {"deployment": {
            "type": "url", "url": "http://storagesvc.fission/v1/archive?id=abc",
            "checksum": {"type": "sha256", "sum": "00ff"}}}, "status": {"buildstatus": "none"}});
        let pkg = PackageArchives::from_object("ns", "p", &object).unwrap();
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
        assert_eq!(pkg.effective_build_status(), "pending");
    }

    #[test]
    fn bad_base64_is_reported() {
        let object = json!({"spec": {"deployment": {"literal": "***"}}});
        let err = PackageArchives::from_object("ns", "p", &object).unwrap_err();
        assert!(err.contains("literal is not valid base64"), "{err}");
    }

    #[test]
    fn literal_round_trips_as_base64() {
        let archive = Archive::literal(b"hello".to_vec());
        let value = serde_json::to_value(&archive).unwrap();
        assert_eq!(value["literal"], json!("aGVsbG8="));
        assert_eq!(serde_json::from_value::<Archive>(value).unwrap(), archive);
        assert_eq!(
            serde_json::from_value::<Archive>(json!({"literal": null})).unwrap(),
            Archive::default()
        );
    }
}
