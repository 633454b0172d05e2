use rivulet_api::{Environment, Function};

use super::*;

fn env() -> Environment {
    let mut env: Environment =
        serde_yaml_ng::from_str(include_str!("../../../tests/fixtures/env-cli-python.yaml"))
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
