//! Deployment, Service and HPA of `newdeploy` and `container` functions (pure builders), as
//! Fission's executors make them (reference/fission.md §3).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, Container, EnvFromSource, EnvVar, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecretEnvSource, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rivulet_api::defaults::RUNTIME_PORT;
use rivulet_api::keys::{executor_types, fission_labels};
use rivulet_api::{Environment, Function};

use crate::environment::pool_pod::{PoolPodConfig, PoolPodError, runtime_pod_spec};
use crate::merge::{MergeError, merge};

/// The three objects of a Deployment-backed function.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployObjects {
    /// Runs the function's pods.
    pub deployment: Deployment,
    /// Port 80 → the function's port; the function's address is `<name>.<namespace>`.
    pub service: Service,
    /// Scales the Deployment between `MinScale` and `MaxScale`.
    pub hpa: HorizontalPodAutoscaler,
}

/// Why the objects cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The Function lacks metadata (it was not read from the API server).
    #[error("Function has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// The environment's pod template cannot be built.
    #[error(transparent)]
    Environment(#[from] PoolPodError),
    /// The function's pod spec does not merge.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// `container` functions need exactly one container with exactly one port.
    #[error("spec.podspec: {0}")]
    PodSpec(String),
}

struct Identity<'a> {
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
}

fn identity(function: &Function) -> Result<Identity<'_>, DeployError> {
    let meta = &function.metadata;
    Ok(Identity {
        name: meta
            .name
            .as_deref()
            .ok_or(DeployError::MissingMetadata("name"))?,
        namespace: meta
            .namespace
            .as_deref()
            .ok_or(DeployError::MissingMetadata("namespace"))?,
        uid: meta
            .uid
            .as_deref()
            .ok_or(DeployError::MissingMetadata("uid"))?,
    })
}

/// `<prefix>-<fn>-<namespace>-<last 17 of uid>`, parts cut to 17 characters when long (Fission's
/// `getObjName`), lower-cased.
pub fn object_name(prefix: &str, name: &str, namespace: &str, uid: &str) -> String {
    let cut = |s: &str| s.get(..17).unwrap_or(s).to_owned();
    let (name, namespace) = if name.len() + namespace.len() >= 35 {
        (cut(name), cut(namespace))
    } else {
        (name.to_owned(), namespace.to_owned())
    };
    let uid_tail = uid.get(uid.len().saturating_sub(17)..).unwrap_or(uid);
    format!("{prefix}-{name}-{namespace}-{uid_tail}").to_lowercase()
}

/// Objects of a `newdeploy` function: the environment's pod (runtime + fetcher) whose fetcher
/// specializes at start from `specialize_request` (the JSON the router would send).
/// `resource_version_count` is the sum of the referenced secrets' and configmaps' resource
/// versions, so a change of one of them rolls the pods.
pub fn build_newdeploy(
    function: &Function,
    env: &Environment,
    specialize_request: &str,
    resource_version_count: u64,
    config: &PoolPodConfig,
) -> Result<DeployObjects, DeployError> {
    let id = identity(function)?;
    let name = object_name(executor_types::NEWDEPLOY, id.name, id.namespace, id.uid);
    let fetcher_args = [
        "-specialize-on-startup".to_owned(),
        "-specialize-request".to_owned(),
        specialize_request.to_owned(),
    ];
    let mut pod = runtime_pod_spec(
        env,
        config,
        &fetcher_args,
        &[rv_count_env(resource_version_count)],
    )?;
    // The function's non-empty resources override the environment's, key by key.
    if let (Some(runtime), Some(resources)) = (pod.containers.first_mut(), &function.spec.resources)
    {
        runtime.resources = Some(override_resources(
            runtime.resources.take().unwrap_or_default(),
            resources,
        ));
    }
    let mut labels = env.metadata.labels.clone().unwrap_or_default();
    labels.extend(function.metadata.labels.clone().unwrap_or_default());
    labels.extend(identity_labels(executor_types::NEWDEPLOY, &id));
    labels.insert(
        fission_labels::ENVIRONMENT_NAME.into(),
        env.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        fission_labels::ENVIRONMENT_NAMESPACE.into(),
        env.metadata.namespace.clone().unwrap_or_default(),
    );
    labels.insert(
        fission_labels::ENVIRONMENT_UID.into(),
        env.metadata.uid.clone().unwrap_or_default(),
    );
    Ok(objects(
        function,
        &id,
        &name,
        labels,
        pod,
        i32::from(RUNTIME_PORT),
    ))
}

/// Objects of a `container` function: the user's pod spec merged over a base container named after
/// the function, with `envFrom` for its secrets and configmaps; no fetcher.
pub fn build_container(
    function: &Function,
    resource_version_count: u64,
) -> Result<DeployObjects, DeployError> {
    let id = identity(function)?;
    let name = object_name(executor_types::CONTAINER, id.name, id.namespace, id.uid);
    let user = function.spec.podspec.as_ref().ok_or_else(|| {
        DeployError::PodSpec("executor type container requires a pod spec".into())
    })?;
    let [container] = user.containers.as_slice() else {
        return Err(DeployError::PodSpec(format!(
            "podspec should have exactly one container, got {}",
            user.containers.len()
        )));
    };
    let port = match container.ports.as_deref() {
        Some([port]) => port.container_port,
        other => {
            return Err(DeployError::PodSpec(format!(
                "container {:?} should have exactly one port, got {}",
                container.name,
                other.map_or(0, <[_]>::len)
            )));
        }
    };
    let mut env_from = Vec::new();
    for secret in function.spec.secrets.iter().flatten() {
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret.name.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        });
    }
    for cm in function.spec.configmaps.iter().flatten() {
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cm.name.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        });
    }
    let base = PodSpec {
        containers: vec![Container {
            name: container.name.clone(),
            env: Some(vec![rv_count_env(resource_version_count)]),
            env_from: (!env_from.is_empty()).then_some(env_from),
            resources: function.spec.resources.clone(),
            ..Container::default()
        }],
        ..PodSpec::default()
    };
    let pod = merge(&base, user, "spec.podspec")?;
    let mut labels = function.metadata.labels.clone().unwrap_or_default();
    labels.extend(identity_labels(executor_types::CONTAINER, &id));
    Ok(objects(function, &id, &name, labels, pod, port))
}

fn identity_labels(executor: &str, id: &Identity<'_>) -> BTreeMap<String, String> {
    [
        (fission_labels::EXECUTOR_TYPE, executor),
        (fission_labels::FUNCTION_NAME, id.name),
        (fission_labels::FUNCTION_NAMESPACE, id.namespace),
        (fission_labels::FUNCTION_UID, id.uid),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn rv_count_env(count: u64) -> EnvVar {
    EnvVar {
        name: "RESOURCE_VERSION_COUNT".into(),
        value: Some(count.to_string()),
        value_from: None,
    }
}

fn override_resources(
    mut base: ResourceRequirements,
    function: &ResourceRequirements,
) -> ResourceRequirements {
    for (target, source) in [
        (&mut base.requests, &function.requests),
        (&mut base.limits, &function.limits),
    ] {
        for (key, quantity) in source.iter().flatten() {
            if !quantity.0.is_empty() && quantity.0 != "0" {
                target
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key.clone(), quantity.clone());
            }
        }
    }
    base
}

fn objects(
    function: &Function,
    id: &Identity<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
    pod: PodSpec,
    port: i32,
) -> DeployObjects {
    let strategy = function.spec.invoke_strategy.execution_strategy.clone();
    let min = strategy.min_scale.unwrap_or(0).max(1);
    let max = strategy.max_scale.unwrap_or(0).max(min);
    // The selector is immutable on Deployments: only the function's identity, never user labels.
    let selector: BTreeMap<String, String> =
        identity_labels(labels[fission_labels::EXECUTOR_TYPE].as_str(), id);
    let meta = ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(id.namespace.to_owned()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![OwnerReference {
            api_version: rivulet_api::API_VERSION.into(),
            kind: "Function".into(),
            name: id.name.to_owned(),
            uid: id.uid.to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    };
    let twenty_percent = || Some(IntOrString::String("20%".into()));
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: DeploymentSpec {
            replicas: Some(min),
            revision_history_limit: Some(0),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: twenty_percent(),
                    max_unavailable: twenty_percent(),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    };
    let service = Service {
        metadata: meta.clone(),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http-env".into()),
                port: 80,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let mut metrics: Vec<MetricSpec> = Vec::new();
    if let Some(cpu) = strategy.target_cpu_percent.filter(|c| (1..100).contains(c)) {
        metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(cpu),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        });
    }
    metrics.extend(strategy.hpa_metrics.unwrap_or_default());
    let hpa = HorizontalPodAutoscaler {
        metadata: meta,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: name.to_owned(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: (!metrics.is_empty()).then_some(metrics),
            behavior: strategy.hpa_behavior,
        },
        status: None,
    };
    DeployObjects {
        deployment,
        service,
        hpa,
    }
}

#[cfg(test)]
mod tests {
    use rivulet_api::{Environment, Function};

    use super::*;

    fn env() -> Environment {
        let mut env: Environment =
            serde_yaml_ng::from_str(include_str!("../../tests/fixtures/env-cli-python.yaml"))
                .unwrap();
        env.metadata.uid = Some("e0e0e0e0-1111-4222-8333-944455556666".into());
        env
    }

    fn function(yaml: &str) -> Function {
        let mut f: Function = serde_yaml_ng::from_str(yaml).unwrap();
        f.metadata.uid = Some("f1f1f1f1-aaaa-4bbb-8ccc-0123456789ab".into());
        f
    }

    const NEWDEPLOY: &str = r"
apiVersion: fission.io/v1
kind: Function
metadata: {name: resize, namespace: default, labels: {team: img}}
spec:
  environment: {namespace: default, name: python}
  package: {packageref: {namespace: default, name: resize-pkg}, functionName: resize.main}
  secrets: [{namespace: default, name: s3}]
  resources: {requests: {cpu: 200m}, limits: {memory: 256Mi}}
  InvokeStrategy:
    StrategyType: execution
    ExecutionStrategy: {ExecutorType: newdeploy, MinScale: 2, MaxScale: 5, TargetCPUPercent: 60}
";

    const CONTAINER: &str = r"
apiVersion: fission.io/v1
kind: Function
metadata: {name: web, namespace: default}
spec:
  environment: {namespace: default, name: python}
  package: {packageref: {namespace: default, name: unused}}
  configmaps: [{namespace: default, name: settings}]
  InvokeStrategy:
    StrategyType: execution
    ExecutionStrategy: {ExecutorType: container, MinScale: 0, MaxScale: 3}
  podspec:
    containers:
    - name: web
      image: ghcr.io/example/web:2.1
      ports: [{containerPort: 8080}]
";

    #[test]
    fn newdeploy_objects() {
        let objects = build_newdeploy(
            &function(NEWDEPLOY),
            &env(),
            r#"{"FetchReq":{},"LoadReq":{}}"#,
            42,
            &PoolPodConfig::default(),
        )
        .unwrap();
        insta::assert_yaml_snapshot!(
            "newdeploy_objects",
            (&objects.deployment, &objects.service, &objects.hpa)
        );
        assert_eq!(
            objects.deployment.metadata.name.as_deref(),
            Some("newdeploy-resize-default-8ccc-0123456789ab")
        );
    }

    #[test]
    fn container_objects() {
        let objects = build_container(&function(CONTAINER), 7).unwrap();
        insta::assert_yaml_snapshot!(
            "container_objects",
            (&objects.deployment, &objects.service, &objects.hpa)
        );
    }

    #[test]
    fn container_needs_exactly_one_container_and_port() {
        let mut f = function(CONTAINER);
        f.spec.podspec.as_mut().unwrap().containers[0].ports = None;
        assert_eq!(
            build_container(&f, 0).unwrap_err().to_string(),
            "spec.podspec: container \"web\" should have exactly one port, got 0"
        );
        f.spec.podspec = None;
        assert_eq!(
            build_container(&f, 0).unwrap_err().to_string(),
            "spec.podspec: executor type container requires a pod spec"
        );
    }

    #[test]
    fn names_follow_fission() {
        assert_eq!(
            object_name(
                "newdeploy",
                "hello",
                "default",
                "12345678-1234-1234-1234-123456789012"
            ),
            "newdeploy-hello-default-1234-123456789012"
        );
        assert_eq!(
            object_name(
                "newdeploy",
                "a-rather-long-function-name",
                "some-namespace",
                "u"
            ),
            "newdeploy-a-rather-long-fun-some-namespace-u"
        );
    }
}
