//! `Package`: function code, as a source or deployment archive.

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ObjectRef;

/// Desired state of a Package: a source archive (to build) and/or a deployment archive (to run).
///
/// Like Fission v1.22, Package has no status subresource: Fission clients write `status` together
/// with the spec when they create the package.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "Package",
    namespaced,
    shortname = "pkg",
    status = "PackageStatus",
    doc = "A Fission Package: function code as a source archive (built by the environment's builder) and/or a deployment archive.",
    printcolumn(
        name = "Environment",
        type_ = "string",
        json_path = ".spec.environment.name"
    ),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.buildstatus"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct PackageSpec {
    /// Environment whose builder builds `source` (and that runs the code).
    pub environment: ObjectRef,
    /// Source archive, built into `deployment` by the environment's builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Archive>,
    /// Deployment archive, loaded by the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Archive>,
    /// Build command overriding the environment builder's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildcmd: Option<String>,
}

/// An archive: inline bytes or a URL with an optional checksum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Archive {
    /// `literal` or `url`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["literal", "url", ""]))]
    pub archive_type: Option<String>,
    /// Inline content, base64 in JSON; at most 256 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::literal_bytes")]
    pub literal: Option<ByteString>,
    /// Where to download the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Checksum verified for `url` archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
}

/// Checksum of an archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Checksum {
    /// Always `sha256` when set.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["sha256", ""]))]
    pub checksum_type: Option<String>,
    /// Hex digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
}

/// The two archive types, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveType {
    /// Inline bytes.
    Literal,
    /// Downloaded from a URL.
    Url,
}

impl Archive {
    /// The archive type: explicit `type`, else inferred from which field is set.
    pub fn kind(&self) -> Option<ArchiveType> {
        match self.archive_type.as_deref() {
            Some("literal") => Some(ArchiveType::Literal),
            Some("url") => Some(ArchiveType::Url),
            _ if self.literal.as_ref().is_some_and(|l| !l.0.is_empty()) => {
                Some(ArchiveType::Literal)
            }
            _ if self.url.as_ref().is_some_and(|u| !u.is_empty()) => Some(ArchiveType::Url),
            _ => None,
        }
    }

    /// Whether the archive holds nothing (no literal bytes and no URL).
    pub fn is_empty(&self) -> bool {
        self.literal.as_ref().is_none_or(|l| l.0.is_empty())
            && self.url.as_ref().is_none_or(String::is_empty)
    }
}

/// Build state of a Package, written by clients at create time and by the package reconciler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageStatus {
    /// `pending`, `running`, `succeeded`, `failed` or `none` (deployment archive given, no build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["pending", "running", "succeeded", "failed", "none", ""]))]
    pub buildstatus: Option<String>,
    /// Builder output, or why the package cannot be built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildlog: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_timestamp: Option<Time>,
    /// Rivulet addition: `Ready` (the package can be deployed) with the reason when not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// Values of `status.buildstatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStatus {
    /// Waiting for a build.
    Pending,
    /// Being built.
    Running,
    /// Built; `deployment` is usable.
    Succeeded,
    /// The build failed; see `buildlog`.
    Failed,
    /// No build needed: `deployment` was given directly.
    None,
}

impl BuildStatus {
    /// Parses Fission's spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// Fission's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::None => "none",
        }
    }

    /// Whether the fetcher may deploy the package's `deployment` archive.
    pub fn is_deployable(self) -> bool {
        matches!(self, Self::Succeeded | Self::None)
    }
}

impl PackageSpec {
    /// Fission's defaulting of an empty `buildstatus` (its mutating webhook): a deployment archive
    /// means `none`; only a source archive means `pending`; neither means `failed`, with the log.
    pub fn default_build_status(&self) -> (BuildStatus, Option<&'static str>) {
        if self.deployment.as_ref().is_some_and(|a| !a.is_empty()) {
            (BuildStatus::None, None)
        } else if self.source.as_ref().is_some_and(|a| !a.is_empty()) {
            (BuildStatus::Pending, None)
        } else {
            (
                BuildStatus::Failed,
                Some("Both source and deployment are empty"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(bytes: &[u8]) -> Archive {
        Archive {
            literal: Some(ByteString(bytes.to_vec())),
            ..Archive::default()
        }
    }

    #[test]
    fn build_status_defaulting_follows_fission_webhook() {
        let deploy = PackageSpec {
            deployment: Some(literal(b"x")),
            source: Some(literal(b"y")),
            ..Default::default()
        };
        assert_eq!(deploy.default_build_status(), (BuildStatus::None, None));
        let source = PackageSpec {
            source: Some(literal(b"y")),
            ..Default::default()
        };
        assert_eq!(source.default_build_status(), (BuildStatus::Pending, None));
        let neither = PackageSpec::default();
        assert_eq!(
            neither.default_build_status(),
            (
                BuildStatus::Failed,
                Some("Both source and deployment are empty")
            )
        );
    }

    #[test]
    fn archive_kind_is_explicit_or_inferred() {
        assert_eq!(literal(b"x").kind(), Some(ArchiveType::Literal));
        let url = Archive {
            url: Some("http://x".into()),
            ..Archive::default()
        };
        assert_eq!(url.kind(), Some(ArchiveType::Url));
        assert_eq!(Archive::default().kind(), None);
    }
}
