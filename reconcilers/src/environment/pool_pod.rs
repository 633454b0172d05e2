//! The warm-pool pod of an Environment (pure builder).
//!
//! Shape follows Fission's pool pods (reference/fission.md §2.1, §5.1): the runtime container
//! (named after the environment, the environment image, ports 8888 and 8000, the environment's
//! resources, a `preStop` sleep of the grace period) and the fetcher sidecar (readiness on
//! `/readiness-healthz`), sharing `/userfunc`, `/secrets` and `/configs`, plus the downward-API
//! `podinfo` volume. `runtime.container` is merged into the runtime container, `imagepullsecret`
//! replaces image pull secrets, and `runtime.podspec` is merged last. Rivulet then pins the pod to
//! its cluster (node affinity, and Liqo's toleration for remote clusters).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, DownwardAPIVolumeFile, DownwardAPIVolumeSource,
    EmptyDirVolumeSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler,
    LocalObjectReference, NodeAffinity, NodeSelector, NodeSelectorTerm, ObjectFieldSelector, Pod,
    PodSpec, Probe, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rivulet_api::defaults::{FETCHER_PORT, RUNTIME_PORT};
use rivulet_api::keys::{executor_types, fission_labels, fission_paths, fission_volumes, rivulet};
use rivulet_api::specialize::FetcherKey;
use rivulet_api::{Environment, EnvironmentSpec};
use serde::Serialize;

use super::fetcher_token::require_token;

use crate::hash::stable_hash;
use crate::merge::{MergeError, merge};
use crate::placement::{LOCAL_CLUSTER, cluster_node_selector_term, virtual_node_toleration};

/// Operator settings that shape every pool pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolPodConfig {
    /// Image of the fetcher sidecar.
    pub fetcher_image: String,
    /// Command of the fetcher sidecar (Fission's flags are appended as arguments).
    pub fetcher_command: Vec<String>,
    /// Service account of pool pods (the fetcher reads Packages, Secrets and ConfigMaps).
    pub service_account: Option<String>,
    /// `imagePullPolicy` of the runtime container.
    pub runtime_image_pull_policy: Option<String>,
    /// Installation key of fetcher tokens: when set, a warm pod's fetcher accepts only the
    /// router (docs/fetcher.md "Who may call the fetcher"). Hashed as its fingerprint, so a new
    /// key rolls the pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetcher_key: Option<FetcherKey>,
}

impl Default for PoolPodConfig {
    fn default() -> Self {
        Self {
            fetcher_image: "ghcr.io/rivulet-dev/rivulet:latest".into(),
            fetcher_command: vec!["rivulet".into(), "fetcher".into()],
            service_account: Some("rivulet-fetcher".into()),
            runtime_image_pull_policy: Some("IfNotPresent".into()),
            fetcher_key: None,
        }
    }
}

/// Why a pool pod cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolPodError {
    /// The Environment lacks metadata the pod needs (it was not read from the API server).
    #[error("Environment has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// A user fragment does not merge into a valid pod.
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// Annotation copied from the environment that must not reach pods (large, and meaningless there).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The runtime's termination message is the end of its log when it fails: what the router and
/// the Environment's `Ready` condition quote when the runtime cannot start
/// (`rivulet_api::pod_status`).
const FALLBACK_TO_LOGS: &str = "FallbackToLogsOnError";

/// Hash of everything that shapes a pool pod, so a change rolls warm pods. Pool size and
/// placement are left out: they change how many pods run where, not what a pod is.
pub fn pool_spec_hash(spec: &EnvironmentSpec, config: &PoolPodConfig) -> String {
    let shaping = EnvironmentSpec {
        poolsize: None,
        placement: None,
        ..spec.clone()
    };
    stable_hash(&(shaping, config))
}

/// Labels selecting the warm (unclaimed) pods of an Environment.
pub fn warm_pod_selector(env_uid: &str) -> String {
    format!(
        "{}={},{}={},{}=true",
        fission_labels::EXECUTOR_TYPE,
        executor_types::POOLMGR,
        fission_labels::ENVIRONMENT_UID,
        env_uid,
        fission_labels::MANAGED
    )
}

/// Builds the pool pod of `env` for `cluster_id`. The name is left to the API server
/// (`generateName`), since pool pods are interchangeable.
pub fn build_pool_pod(
    env: &Environment,
    cluster_id: &str,
    spec_hash: &str,
    config: &PoolPodConfig,
) -> Result<Pod, PoolPodError> {
    let (name, namespace, uid) = identity(env)?;
    let mut pod_spec = runtime_pod_spec(env, config, &[], &[])?;
    if config.fetcher_key.is_some() {
        require_token(&mut pod_spec, name);
    }
    pin_to_cluster(&mut pod_spec, cluster_id);

    let mut labels = env.metadata.labels.clone().unwrap_or_default();
    labels.extend(pool_labels(name, namespace, uid));
    labels.insert(rivulet::POOL_SPEC_HASH_LABEL.into(), spec_hash.to_owned());
    labels.insert(rivulet::CLUSTER_LABEL.into(), cluster_id.to_owned());
    let mut annotations = env.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_APPLIED);

    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(name, namespace)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owned_by(name, uid)]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    })
}

/// Name, namespace and uid of an Environment read from the API server.
pub(super) fn identity(env: &Environment) -> Result<(&str, &str, &str), PoolPodError> {
    let meta = &env.metadata;
    let missing = PoolPodError::MissingMetadata;
    Ok((
        meta.name.as_deref().ok_or(missing("name"))?,
        meta.namespace.as_deref().ok_or(missing("namespace"))?,
        meta.uid.as_deref().ok_or(missing("uid"))?,
    ))
}

/// The owner reference that makes an object part of its Environment (garbage-collected with it).
pub(super) fn owned_by(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: rivulet_api::API_VERSION.into(),
        kind: "Environment".into(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The pod spec of a function pod built from an Environment (pool pods, and `newdeploy`
/// Deployments): runtime container, fetcher sidecar, shared volumes, and the environment's
/// fragments merged in with Fission's rules. `fetcher_args` are appended to the fetcher's Fission
/// flags (newdeploy adds `-specialize-on-startup -specialize-request <json>`); `runtime_env` is
/// added to the runtime container.
pub fn runtime_pod_spec(
    env: &Environment,
    config: &PoolPodConfig,
    fetcher_args: &[String],
    runtime_env: &[EnvVar],
) -> Result<PodSpec, PoolPodError> {
    let name = env
        .metadata
        .name
        .as_deref()
        .ok_or(PoolPodError::MissingMetadata("name"))?;
    let spec = &env.spec;
    let grace = spec.termination_grace_period.unwrap_or(0).max(0);

    let mut runtime = runtime_container(name, spec, grace, config);
    if !runtime_env.is_empty() {
        runtime.env = Some(runtime_env.to_vec());
    }
    if let Some(fragment) = &spec.runtime.container {
        runtime = merge(&runtime, fragment, "spec.runtime.container")?;
        // Fission keeps these its own whatever the fragment says.
        name.clone_into(&mut runtime.name);
        runtime.image = Some(spec.runtime.image.clone());
        runtime.termination_message_path = Some("/dev/termination-log".into());
        runtime.termination_message_policy = Some(FALLBACK_TO_LOGS.into());
        runtime
            .image_pull_policy
            .clone_from(&config.runtime_image_pull_policy);
    }
    let mut fetcher = fetcher_container(grace, config);
    fetcher
        .args
        .get_or_insert_with(Vec::new)
        .splice(0..0, fetcher_args.iter().cloned());

    let mut pod_spec = PodSpec {
        containers: vec![runtime, fetcher],
        volumes: Some(shared_volumes()),
        service_account_name: config.service_account.clone(),
        termination_grace_period_seconds: Some(grace),
        ..PodSpec::default()
    };
    if let Some(secret) = spec.imagepullsecret.as_deref().filter(|s| !s.is_empty()) {
        pod_spec.image_pull_secrets = Some(vec![LocalObjectReference {
            name: secret.to_owned(),
        }]);
    }
    if let Some(fragment) = &spec.runtime.podspec {
        pod_spec = merge(&pod_spec, fragment, "spec.runtime.podspec")?;
    }
    Ok(pod_spec)
}

/// Fission's pool labels: `executorType=poolmgr`, the environment's identity, `managed=true`.
fn pool_labels(name: &str, namespace: &str, uid: &str) -> BTreeMap<String, String> {
    [
        (fission_labels::EXECUTOR_TYPE, executor_types::POOLMGR),
        (fission_labels::ENVIRONMENT_NAME, name),
        (fission_labels::ENVIRONMENT_NAMESPACE, namespace),
        (fission_labels::ENVIRONMENT_UID, uid),
        (fission_labels::MANAGED, "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `poolmgr-<env>-<namespace>-`, each part cut to 18 characters when long, as Fission does.
fn generate_name(name: &str, namespace: &str) -> String {
    let (name, namespace) = if name.len() + namespace.len() >= 37 {
        (truncate(name, 18), truncate(namespace, 18))
    } else {
        (name, namespace)
    };
    format!("poolmgr-{name}-{namespace}-").to_lowercase()
}

fn truncate(s: &str, max: usize) -> &str {
    s.get(..max).unwrap_or(s)
}

fn runtime_container(
    name: &str,
    spec: &EnvironmentSpec,
    grace: i64,
    config: &PoolPodConfig,
) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(spec.runtime.image.clone()),
        image_pull_policy: config.runtime_image_pull_policy.clone(),
        resources: spec.resources.clone(),
        termination_message_path: Some("/dev/termination-log".into()),
        termination_message_policy: Some(FALLBACK_TO_LOGS.into()),
        ports: Some(vec![
            port("http-fetcher", FETCHER_PORT),
            port("http-env", RUNTIME_PORT),
        ]),
        lifecycle: pre_stop_sleep(grace),
        volume_mounts: Some(shared_mounts(false)),
        ..Container::default()
    }
}

fn fetcher_container(grace: i64, config: &PoolPodConfig) -> Container {
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(FETCHER_PORT)),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(1),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    Container {
        name: "fetcher".into(),
        image: Some(config.fetcher_image.clone()),
        // Empty: the image's own entrypoint runs (local mode maps the image to the binary).
        command: (!config.fetcher_command.is_empty()).then(|| config.fetcher_command.clone()),
        args: Some(
            [
                "-secret-dir",
                fission_paths::SECRETS,
                "-cfgmap-dir",
                fission_paths::CONFIGS,
                fission_paths::USERFUNC,
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        readiness_probe: Some(probe("/readiness-healthz", 1, 30)),
        liveness_probe: Some(probe("/healthz", 5, 3)),
        lifecycle: pre_stop_sleep(grace),
        volume_mounts: Some(shared_mounts(true)),
        ..Container::default()
    }
}

fn port(name: &str, number: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(number),
        ..ContainerPort::default()
    }
}

fn pre_stop_sleep(grace: i64) -> Option<Lifecycle> {
    (grace > 0).then(|| Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["/bin/sleep".into(), grace.to_string()]),
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    })
}

fn shared_volumes() -> Vec<Volume> {
    let empty = |name: &str| Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let field = |path: &str, field_path: &str| DownwardAPIVolumeFile {
        path: path.to_owned(),
        field_ref: Some(ObjectFieldSelector {
            field_path: field_path.to_owned(),
            api_version: None,
        }),
        ..DownwardAPIVolumeFile::default()
    };
    vec![
        empty(fission_volumes::USERFUNC),
        empty(fission_volumes::SECRETS),
        empty(fission_volumes::CONFIGMAPS),
        Volume {
            name: fission_volumes::PODINFO.into(),
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![
                    field("name", "metadata.name"),
                    field("namespace", "metadata.namespace"),
                ]),
                ..DownwardAPIVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

fn shared_mounts(with_podinfo: bool) -> Vec<VolumeMount> {
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    };
    let mut mounts = vec![
        mount(fission_volumes::USERFUNC, fission_paths::USERFUNC),
        mount(fission_volumes::SECRETS, fission_paths::SECRETS),
        mount(fission_volumes::CONFIGMAPS, fission_paths::CONFIGS),
    ];
    if with_podinfo {
        mounts.push(mount(fission_volumes::PODINFO, fission_paths::PODINFO));
    }
    mounts
}

/// ANDs the cluster's node-affinity term into every required term the user gave (or makes it the
/// only term), and adds Liqo's toleration for remote clusters.
fn pin_to_cluster(pod: &mut PodSpec, cluster_id: &str) {
    let pin = cluster_node_selector_term(cluster_id);
    let affinity = pod.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: Vec::new(),
        });
    if required.node_selector_terms.is_empty() {
        required.node_selector_terms.push(pin);
    } else {
        for term in &mut required.node_selector_terms {
            and_terms(term, &pin);
        }
    }
    if cluster_id != LOCAL_CLUSTER {
        let tolerations = pod.tolerations.get_or_insert_with(Vec::new);
        let toleration = virtual_node_toleration();
        if !tolerations.contains(&toleration) {
            tolerations.push(toleration);
        }
    }
}

fn and_terms(term: &mut NodeSelectorTerm, extra: &NodeSelectorTerm) {
    term.match_expressions
        .get_or_insert_with(Vec::new)
        .extend(extra.match_expressions.iter().flatten().cloned());
}

#[cfg(test)]
mod tests {
    use rivulet_api::Environment;

    use super::*;

    fn fixture(name: &str) -> Environment {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut env: Environment =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        env.metadata.uid = Some("5c1f8a7e-1111-4222-8333-944455556666".into());
        env
    }

    #[test]
    fn cli_created_python_environment_local_pod() {
        let env = fixture("env-cli-python.yaml");
        let config = PoolPodConfig::default();
        let hash = pool_spec_hash(&env.spec, &config);
        let pod = build_pool_pod(&env, LOCAL_CLUSTER, &hash, &config).unwrap();
        insta::assert_yaml_snapshot!("cli_python_local", pod);
    }

    #[test]
    fn fragments_merge_and_remote_pod_is_pinned_with_toleration() {
        let env = fixture("env-podspec-nodejs.yaml");
        let config = PoolPodConfig::default();
        let pod = build_pool_pod(&env, "naples", "h", &config).unwrap();
        insta::assert_yaml_snapshot!("podspec_nodejs_remote", pod);
        let spec = pod.spec.unwrap();
        let runtime = &spec.containers[0];
        assert_eq!(
            runtime.name, "nodejs",
            "Fission names the runtime container after the environment"
        );
        assert_eq!(
            runtime.image.as_deref(),
            Some("ghcr.io/fission/node-env:1.32.1")
        );
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nodejs", "fetcher", "sidecar"]);
        let terms = spec
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        let keys: Vec<String> = terms[0]
            .match_expressions
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            ["kubernetes.io/arch", "liqo.io/remote-cluster-id"],
            "user term ANDed with the cluster pin"
        );
        assert_eq!(spec.image_pull_secrets.unwrap()[0].name, "regcred");
        assert_eq!(spec.tolerations.unwrap().len(), 2);
        let annotations = pod.metadata.annotations.unwrap();
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    }

    #[test]
    fn spec_hash_ignores_size_and_placement_but_not_shape() {
        let env = fixture("env-cli-python.yaml");
        let config = PoolPodConfig::default();
        let base = pool_spec_hash(&env.spec, &config);
        let resized = EnvironmentSpec {
            poolsize: Some(9),
            placement: Some(rivulet_api::Placement::default()),
            ..env.spec.clone()
        };
        assert_eq!(pool_spec_hash(&resized, &config), base);
        let mut reimaged = env.spec.clone();
        reimaged.runtime.image = "fission/python-env:1.2".into();
        assert_ne!(pool_spec_hash(&reimaged, &config), base);
        let other_fetcher = PoolPodConfig {
            fetcher_image: "x".into(),
            ..config
        };
        assert_ne!(pool_spec_hash(&env.spec, &other_fetcher), base);
    }

    #[test]
    fn long_names_are_truncated_like_fission() {
        assert_eq!(
            generate_name("python", "default"),
            "poolmgr-python-default-"
        );
        let long = generate_name("a-very-long-environment-name", "a-very-long-namespace-name");
        assert_eq!(long, "poolmgr-a-very-long-enviro-a-very-long-namesp-");
    }

    #[test]
    fn missing_uid_is_an_error_not_a_panic() {
        let mut env = fixture("env-cli-python.yaml");
        env.metadata.uid = None;
        let err = build_pool_pod(&env, LOCAL_CLUSTER, "h", &PoolPodConfig::default()).unwrap_err();
        assert_eq!(err.to_string(), "Environment has no metadata.uid");
    }

    #[test]
    fn selector_matches_fission_pool_labels() {
        assert_eq!(
            warm_pod_selector("u1"),
            "executorType=poolmgr,environmentUid=u1,managed=true"
        );
    }

    #[test]
    fn with_a_fetcher_key_only_the_fetcher_mounts_the_token_and_the_pool_rolls() {
        let env = fixture("env-cli-python.yaml");
        let plain = PoolPodConfig::default();
        let key = rivulet_api::specialize::FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        let keyed = PoolPodConfig {
            fetcher_key: Some(key.clone()),
            ..PoolPodConfig::default()
        };
        let other = PoolPodConfig {
            fetcher_key: Some(
                rivulet_api::specialize::FetcherKey::from_file_bytes(&[b'x'; 32]).unwrap(),
            ),
            ..PoolPodConfig::default()
        };
        let hashes = [&plain, &keyed, &other].map(|c| pool_spec_hash(&env.spec, c));
        assert_ne!(hashes[0], hashes[1], "adding a key must roll pools");
        assert_ne!(hashes[1], hashes[2], "a new key must roll pools");

        let spec = build_pool_pod(&env, LOCAL_CLUSTER, "h", &keyed)
            .unwrap()
            .spec
            .unwrap();
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.secret.is_some())
            .unwrap();
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some(rivulet_api::specialize::token::token_secret_name("python").as_str())
        );
        let mounts = |name: &str| -> Vec<String> {
            let c = spec.containers.iter().find(|c| c.name == name).unwrap();
            c.volume_mounts
                .iter()
                .flatten()
                .filter(|m| m.name == volume.name)
                .map(|m| m.mount_path.clone())
                .collect()
        };
        assert_eq!(mounts("fetcher"), ["/etc/rivulet/fetcher"]);
        assert!(
            mounts("python").is_empty(),
            "user code must not see the token"
        );
        let args = spec.containers[1].args.clone().unwrap();
        assert_eq!(args[..2], ["--token-file", "/etc/rivulet/fetcher/token"]);
        // The key itself is in no object the operator writes.
        let yaml = serde_yaml_ng::to_string(&spec).unwrap();
        assert!(!yaml.contains("kkkkkkkk") && !yaml.contains(&key.token_for("x")));
    }
}
