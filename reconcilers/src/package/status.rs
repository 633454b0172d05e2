//! The Package's status from its spec (pure).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::package::BuildStatus;
use rivulet_api::validation::ValidationErrors;
use rivulet_api::{Package, PackageStatus};

use crate::function::refs::effective_build_status;
use rivulet_api::conditions::{Wanted, set};

/// Reasons of a Package's `Ready` condition.
pub mod reasons {
    /// The deployment archive can be loaded.
    pub const DEPLOYABLE: &str = "Deployable";
    /// Only a source archive: builds are not supported yet.
    pub const SOURCE_BUILD_UNSUPPORTED: &str = "SourceBuildNotSupported";
    /// The build failed, or there is no archive at all.
    pub const BUILD_FAILED: &str = "BuildFailed";
}

/// The status the package should have: defaulted `buildstatus` (kept when a client wrote one)
/// and the `Ready` condition.
// Invalid first, then the build states: the order a reader checks them in.
#[allow(clippy::if_not_else)]
pub fn desired_status(package: &Package, errors: &ValidationErrors, now: &Time) -> PackageStatus {
    let mut status = package.status.clone().unwrap_or_default();
    let written = status.buildstatus.as_deref().is_some_and(|s| !s.is_empty());
    if !written {
        let (defaulted, log) = package.spec.default_build_status();
        status.buildstatus = Some(defaulted.as_str().to_owned());
        if let Some(log) = log {
            status.buildlog = Some(log.to_owned());
        }
        status.last_update_timestamp = Some(now.clone());
    }
    let (build, log) = effective_build_status(package);
    let wanted = if !errors.is_empty() {
        Wanted {
            type_: READY,
            status: false,
            reason: REASON_INVALID_SPEC,
            message: errors.to_string(),
        }
    } else {
        match build {
            Some(b) if b.is_deployable() => Wanted {
                type_: READY,
                status: true,
                reason: reasons::DEPLOYABLE,
                message: format!("buildstatus {}: the deployment archive is loaded on specialization", b.as_str()),
            },
            Some(BuildStatus::Pending | BuildStatus::Running) => Wanted {
                type_: READY,
                status: false,
                reason: reasons::SOURCE_BUILD_UNSUPPORTED,
                message: "spec.source: source builds are not supported yet; build the archive yourself and set spec.deployment".into(),
            },
            _ => Wanted {
                type_: READY,
                status: false,
                reason: reasons::BUILD_FAILED,
                message: format!("buildstatus failed: {}", log.unwrap_or_default()),
            },
        }
    };
    // No observedGeneration: without a status subresource every status write bumps the
    // generation, so recording it would make each write trigger another.
    set(&mut status.conditions, wanted, None, now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet_api::validation::validate_package;

    fn package(json: serde_json::Value) -> Package {
        serde_json::from_value(json).unwrap()
    }

    fn now() -> Time {
        serde_json::from_value(serde_json::json!("2026-11-23T09:00:00Z")).unwrap()
    }

    #[test]
    fn deploy_only_package_is_defaulted_to_none_and_ready() {
        let p = package(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "p", "namespace": "d", "generation": 1},
            "spec": {"environment": {"name": "python"}, "deployment": {"type": "literal", "literal": "aGk="}}
        }));
        let status = desired_status(&p, &validate_package(&p), &now());
        assert_eq!(status.buildstatus.as_deref(), Some("none"));
        assert_eq!(status.conditions[0].reason, reasons::DEPLOYABLE);
    }

    #[test]
    fn written_buildstatus_is_kept_and_empty_package_fails_with_a_log() {
        let p = package(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"environment": {"name": "python"}, "source": {"type": "literal", "literal": "aGk="}},
            "status": {"buildstatus": "succeeded"}
        }));
        let status = desired_status(&p, &validate_package(&p), &now());
        assert_eq!(
            status.buildstatus.as_deref(),
            Some("succeeded"),
            "clients' status is not overridden"
        );
        let empty = package(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"environment": {"name": "python"}}
        }));
        let status = desired_status(&empty, &validate_package(&empty), &now());
        assert_eq!(status.buildstatus.as_deref(), Some("failed"));
        assert_eq!(
            status.buildlog.as_deref(),
            Some("Both source and deployment are empty")
        );
        assert_eq!(status.conditions[0].reason, reasons::BUILD_FAILED);
    }

    #[test]
    fn source_only_package_says_builds_are_not_supported() {
        let p = package(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"environment": {"name": "python"}, "source": {"type": "literal", "literal": "aGk="}}
        }));
        let status = desired_status(&p, &validate_package(&p), &now());
        assert_eq!(status.buildstatus.as_deref(), Some("pending"));
        assert_eq!(
            status.conditions[0].reason,
            reasons::SOURCE_BUILD_UNSUPPORTED
        );
    }

    #[test]
    fn unchanged_package_keeps_its_timestamps() {
        let p = package(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"environment": {"name": "python"}, "deployment": {"type": "literal", "literal": "aGk="}}
        }));
        let first = desired_status(&p, &validate_package(&p), &now());
        let mut again = p.clone();
        again.status = Some(first.clone());
        let later: Time =
            serde_json::from_value(serde_json::json!("2026-11-23T10:00:00Z")).unwrap();
        assert_eq!(
            desired_status(&again, &validate_package(&again), &later),
            first
        );
    }
}
