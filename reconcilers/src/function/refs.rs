//! Whether a Function's references resolve to usable objects (pure).

use rivulet_api::package::BuildStatus;
use rivulet_api::{Environment, ExecutorType, Function, Package};

/// What the reconciler found for each reference.
#[derive(Clone, Debug, Default)]
pub struct Resolved<'a> {
    /// The referenced Environment, if it exists.
    pub environment: Option<&'a Environment>,
    /// The referenced Package, if it exists.
    pub package: Option<&'a Package>,
    /// Referenced Secrets that do not exist.
    pub missing_secrets: Vec<String>,
    /// Referenced ConfigMaps that do not exist.
    pub missing_configmaps: Vec<String>,
}

/// Why a Function is not Ready: a condition reason and a message naming the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotReady {
    /// CamelCase reason.
    pub reason: &'static str,
    /// Message naming the field and the fix.
    pub message: String,
}

/// Reasons of a Function's `Ready=False`.
pub mod reasons {
    /// The Environment does not exist.
    pub const ENVIRONMENT_NOT_FOUND: &str = "EnvironmentNotFound";
    /// The Package does not exist.
    pub const PACKAGE_NOT_FOUND: &str = "PackageNotFound";
    /// The Package has no deployable archive.
    pub const PACKAGE_NOT_DEPLOYABLE: &str = "PackageNotDeployable";
    /// A Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A ConfigMap does not exist.
    pub const CONFIGMAP_NOT_FOUND: &str = "ConfigMapNotFound";
    /// `poolmgr` on an environment with `poolsize: 0`.
    pub const NO_POOL: &str = "EnvironmentHasNoPool";
}

/// The namespace a reference points into: its own, or the referrer's when empty.
pub fn ref_namespace<'a>(reference_namespace: &'a str, function: &'a Function) -> &'a str {
    if reference_namespace.is_empty() {
        function.metadata.namespace.as_deref().unwrap_or_default()
    } else {
        reference_namespace
    }
}

/// Checks every reference; the first problem found is reported (in the order a user fixes them).
pub fn check(function: &Function, resolved: &Resolved<'_>) -> Result<(), NotReady> {
    let spec = &function.spec;
    let container = function.spec.executor_type() == Some(ExecutorType::Container);
    let env_ns = ref_namespace(&spec.environment.namespace, function);
    // `container` functions run the user's image: no environment or package is used.
    if !container {
        let Some(env) = resolved.environment else {
            return Err(NotReady {
                reason: reasons::ENVIRONMENT_NOT_FOUND,
                message: format!(
                    "spec.environment: Environment {env_ns}/{} does not exist; create it or fix the reference",
                    spec.environment.name
                ),
            });
        };
        if function.spec.executor_type() == Some(ExecutorType::Poolmgr) && env.spec.pool_size() == 0
        {
            return Err(NotReady {
                reason: reasons::NO_POOL,
                message: format!(
                    "spec.environment: Environment {env_ns}/{} has poolsize 0, so poolmgr functions cannot run; set its spec.poolsize or use ExecutorType newdeploy",
                    spec.environment.name
                ),
            });
        }
        let pkg_ref = &spec.package.packageref;
        let pkg_ns = ref_namespace(&pkg_ref.namespace, function);
        let Some(package) = resolved.package else {
            return Err(NotReady {
                reason: reasons::PACKAGE_NOT_FOUND,
                message: format!(
                    "spec.package.packageref: Package {pkg_ns}/{} does not exist; create it or fix the reference",
                    pkg_ref.name
                ),
            });
        };
        deployable(package, &format!("{pkg_ns}/{}", pkg_ref.name))?;
    }
    if let Some(name) = resolved.missing_secrets.first() {
        return Err(NotReady {
            reason: reasons::SECRET_NOT_FOUND,
            message: format!(
                "spec.secrets: Secret {name} does not exist in namespace {}; create it or remove the reference",
                function.metadata.namespace.as_deref().unwrap_or_default()
            ),
        });
    }
    if let Some(name) = resolved.missing_configmaps.first() {
        return Err(NotReady {
            reason: reasons::CONFIGMAP_NOT_FOUND,
            message: format!(
                "spec.configmaps: ConfigMap {name} does not exist in namespace {}; create it or remove the reference",
                function.metadata.namespace.as_deref().unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// The package's effective build status: as written, or Fission's defaulting when empty.
pub fn effective_build_status(package: &Package) -> (Option<BuildStatus>, Option<String>) {
    let status = package.status.as_ref();
    if let Some(written) = status
        .and_then(|s| s.buildstatus.as_deref())
        .filter(|s| !s.is_empty())
    {
        (
            BuildStatus::parse(written),
            status.and_then(|s| s.buildlog.clone()),
        )
    } else {
        let (status, log) = package.spec.default_build_status();
        (Some(status), log.map(str::to_owned))
    }
}

fn deployable(package: &Package, name: &str) -> Result<(), NotReady> {
    let (status, log) = effective_build_status(package);
    let why = match status {
        Some(s) if s.is_deployable() => {
            if package.spec.deployment.as_ref().is_some_and(|d| !d.is_empty()) {
                return Ok(());
            }
            "its buildstatus says deployable but spec.deployment is empty".to_owned()
        }
        Some(BuildStatus::Pending | BuildStatus::Running) => {
            "it has only a source archive and source builds are not supported yet: give it a deployment archive".to_owned()
        }
        Some(BuildStatus::Failed) => format!("its build failed: {}", log.unwrap_or_default()),
        _ => "its status.buildstatus is not one of pending, running, succeeded, failed, none".to_owned(),
    };
    Err(NotReady {
        reason: reasons::PACKAGE_NOT_DEPLOYABLE,
        message: format!("spec.package.packageref: Package {name} cannot be deployed: {why}"),
    })
}
