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
