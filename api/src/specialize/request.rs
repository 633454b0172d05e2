//! Building the specialize request for a function, as Fission's executor does
//! (`NewSpecializeRequest`, reference/fission.md §2.4), so the router and the newdeploy pod
//! builder send exactly what Fission would.

use crate::{Environment, Function};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::wire::{FetchRequest, FetchType, FunctionLoadRequest, FunctionSpecializeRequest};

/// Fission's shared code directory in function pods.
pub const CODE_DIR: &str = "/userfunc";

/// The file (or directory) name the code gets under [`CODE_DIR`]: `user` for version 1
/// environments, `deployarchive` from version 2 on, and the function's UID when one pod serves
/// every function of the environment (`allowedFunctionsPerContainer: infinite`).
pub fn target_filename(function: &Function, environment: &Environment) -> String {
    if environment.spec.version < 2 {
        "user".into()
    } else if environment.spec.is_infinite() {
        function.metadata.uid.clone().unwrap_or_default()
    } else {
        "deployarchive".into()
    }
}

impl FunctionSpecializeRequest {
    /// The request that loads `function`'s deployment archive into a pod of `environment`.
    /// Empty namespaces in the package, secret and configmap references are filled with the
    /// function's namespace, which is what they mean.
    pub fn for_function(function: &Function, environment: &Environment) -> Self {
        let namespace = function.metadata.namespace.clone().unwrap_or_default();
        let or_function_ns = |ns: &str| {
            if ns.is_empty() {
                namespace.clone()
            } else {
                ns.to_owned()
            }
        };
        let package_ref = &function.spec.package.packageref;
        let filename = target_filename(function, environment);
        let references = |list: &Option<Vec<crate::SecretOrConfigMapRef>>| {
            list.iter()
                .flatten()
                .map(|r| crate::SecretOrConfigMapRef {
                    namespace: or_function_ns(&r.namespace),
                    name: r.name.clone(),
                })
                .collect()
        };
        let mut metadata = function.metadata.clone();
        // Bookkeeping of the API server, not the function's identity; it only bloats the body.
        metadata.managed_fields = None;
        Self {
            fetch_req: FetchRequest {
                fetch_type: FetchType::Deployment,
                package: ObjectMeta {
                    namespace: Some(or_function_ns(&package_ref.namespace)),
                    name: Some(package_ref.name.clone()),
                    resource_version: package_ref.resourceversion.clone(),
                    ..ObjectMeta::default()
                },
                url: String::new(),
                storage_svc_url: String::new(),
                filename: filename.clone(),
                secrets: references(&function.spec.secrets),
                config_maps: references(&function.spec.configmaps),
                keep_archive: environment.spec.keeparchive.unwrap_or(false),
            },
            load_req: FunctionLoadRequest {
                file_path: format!("{CODE_DIR}/{filename}"),
                function_name: function
                    .spec
                    .package
                    .function_name
                    .clone()
                    .unwrap_or_default(),
                url: String::new(),
                function_metadata: Some(metadata),
                env_version: environment.spec.version,
            },
        }
    }

    /// Whether `other` asks for the same code of the same function version: everything equal
    /// except the Function's `resourceVersion` and other metadata that status writes change.
    /// A fetcher accepts such a repeat (a router restarted after the Function's status moved on
    /// re-specializes the pods it finds) and refuses anything else.
    pub fn same_claim(&self, other: &Self) -> bool {
        let identity = |r: &Self| {
            r.load_req.function_metadata.as_ref().map(|m| {
                (
                    m.uid.clone(),
                    m.generation,
                    m.name.clone(),
                    m.namespace.clone(),
                )
            })
        };
        self.fetch_req == other.fetch_req
            && self.load_req.file_path == other.load_req.file_path
            && self.load_req.function_name == other.load_req.function_name
            && self.load_req.url == other.load_req.url
            && self.load_req.env_version == other.load_req.env_version
            && identity(self) == identity(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn function() -> Function {
        serde_json::from_value(json!({
            "apiVersion": "fission.io/v1", "kind": "Function",
            "metadata": {"name": "hello", "namespace": "team-a", "uid": "f-uid",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "environment": {"name": "python", "namespace": "team-a"},
                "package": {"packageref": {"name": "hello-pkg", "namespace": "", "resourceversion": "7"},
                            "functionName": "hello.main"},
                "secrets": [{"name": "creds"}],
                "configmaps": [{"namespace": "team-a", "name": "settings"}],
                "InvokeStrategy": {"ExecutionStrategy": {"ExecutorType": "poolmgr"}, "StrategyType": "execution"}
            }
        }))
        .unwrap()
    }

    fn environment(version: i32, extra: &serde_json::Value) -> Environment {
        let mut spec = json!({"version": version, "runtime": {"image": "fission/python-env"}});
        for (key, value) in extra.as_object().unwrap() {
            spec[key] = value.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": "python", "namespace": "team-a"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn a_status_write_does_not_make_another_claim() {
        let env = environment(3, &json!({}));
        let mut f = function();
        f.metadata.generation = Some(2);
        f.metadata.resource_version = Some("10".into());
        let first = FunctionSpecializeRequest::for_function(&f, &env);
        f.metadata.resource_version = Some("11".into());
        let after_status = FunctionSpecializeRequest::for_function(&f, &env);
        assert!(first.same_claim(&after_status));
        f.metadata.generation = Some(3);
        assert!(!first.same_claim(&FunctionSpecializeRequest::for_function(&f, &env)));
        let mut other = function();
        other.metadata.generation = Some(2);
        other.spec.package.function_name = Some("evil.main".into());
        assert!(!first.same_claim(&FunctionSpecializeRequest::for_function(&other, &env)));
    }

    #[test]
    fn version_three_loads_deployarchive() {
        let req = FunctionSpecializeRequest::for_function(&function(), &environment(3, &json!({})));
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(
            wire["FetchReq"],
            json!({"fetchType": 1,
                   "package": {"name": "hello-pkg", "namespace": "team-a", "resourceVersion": "7"},
                   "url": "", "storagesvcurl": "", "filename": "deployarchive",
                   "secretList": [{"namespace": "team-a", "name": "creds"}],
                   "configMapList": [{"namespace": "team-a", "name": "settings"}],
                   "keeparchive": false})
        );
        assert_eq!(wire["LoadReq"]["filepath"], "/userfunc/deployarchive");
        assert_eq!(wire["LoadReq"]["functionName"], "hello.main");
        assert_eq!(wire["LoadReq"]["envVersion"], 3);
        assert_eq!(wire["LoadReq"]["FunctionMetadata"]["uid"], "f-uid");
        assert!(
            wire["LoadReq"]["FunctionMetadata"]
                .get("managedFields")
                .is_none()
        );
    }

    #[test]
    fn version_one_loads_user() {
        let req = FunctionSpecializeRequest::for_function(&function(), &environment(1, &json!({})));
        assert_eq!(req.fetch_req.filename, "user");
        assert_eq!(req.load_req.file_path, "/userfunc/user");
        assert_eq!(req.load_req.env_version, 1);
    }

    #[test]
    fn infinite_environments_use_the_function_uid_and_keeparchive() {
        let env = environment(
            2,
            &json!({"allowedFunctionsPerContainer": "infinite", "keeparchive": true}),
        );
        let req = FunctionSpecializeRequest::for_function(&function(), &env);
        assert_eq!(req.fetch_req.filename, "f-uid");
        assert_eq!(req.load_req.file_path, "/userfunc/f-uid");
        assert!(req.fetch_req.keep_archive);
    }
}
