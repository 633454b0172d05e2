//! `crds/` must be exactly what the code generates, so what users `kubectl apply` matches what
//! the operator expects.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;
use std::path::PathBuf;

use rivulet_api::crds;

const REGENERATE: &str = "cargo run -p rivulet-operator -- crds --out-dir crds";

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn committed_crds_match_generated_ones() {
    let dir = crds_dir();
    let mut expected_files = BTreeSet::new();
    for crd in crds::fission_crds() {
        let name = crds::file_name(&crd);
        let generated = crds::to_yaml(&crd).unwrap();
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_else(|e| {
            panic!("crds/{name} cannot be read ({e}); regenerate with: {REGENERATE}")
        });
        assert!(
            committed == generated,
            "crds/{name} differs from the CRD generated from api/; regenerate with: {REGENERATE}"
        );
        expected_files.insert(name);
    }
    let kustomization =
        std::fs::read_to_string(dir.join(crds::KUSTOMIZATION_FILE)).unwrap_or_else(|e| {
            panic!("crds/kustomization.yaml cannot be read ({e}); regenerate with: {REGENERATE}")
        });
    assert!(
        kustomization == crds::kustomization_yaml(),
        "crds/kustomization.yaml differs from the generated one; regenerate with: {REGENERATE}"
    );
    expected_files.insert(crds::KUSTOMIZATION_FILE.to_owned());
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
        })
        .collect();
    let stale: Vec<_> = present.difference(&expected_files).collect();
    assert!(
        stale.is_empty(),
        "crds/ holds files no kind generates: {stale:?}; regenerate with: {REGENERATE}"
    );
}

#[test]
fn every_kind_has_the_subresources_fission_declares() {
    let with_status: Vec<String> = crds::fission_crds()
        .into_iter()
        .filter(|c| {
            c.spec.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some())
        })
        .map(|c| c.spec.names.kind)
        .collect();
    assert_eq!(
        with_status,
        [
            "Environment",
            "Function",
            "HTTPTrigger",
            "KubernetesWatchTrigger",
            "TimeTrigger",
            // Added by Rivulet for KEDA connector conditions (docs/compatibility.md).
            "MessageQueueTrigger"
        ]
    );
}

#[test]
fn short_names_and_group() {
    for crd in crds::fission_crds() {
        assert_eq!(crd.spec.group, "fission.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        let versions: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(versions, [("v1", true, true)]);
        let short = crd.spec.names.short_names.clone().unwrap_or_default();
        match crd.spec.names.kind.as_str() {
            "Function" => assert_eq!(short, ["fn"]),
            "Package" => assert_eq!(short, ["pkg"]),
            _ => assert!(short.is_empty()),
        }
    }
}

/// Schema defaults are injected by the API server into every stored object, so only Fission's own
/// (TimeTrigger `method` and `subpath`) may exist; anything else would change what users wrote.
#[test]
fn only_fission_schema_defaults_exist() {
    fn walk(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.contains_key("default") && map.contains_key("type") {
                    out.push(path.to_owned());
                }
                for (key, child) in map {
                    walk(child, &format!("{path}/{key}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for crd in crds::fission_crds() {
        let kind = crd.spec.names.kind.clone();
        walk(
            &serde_json::to_value(&crd.spec.versions[0].schema).unwrap(),
            &kind,
            &mut found,
        );
    }
    let spec = "openAPIV3Schema/properties/spec/properties";
    assert_eq!(
        found,
        [
            format!("TimeTrigger/{spec}/method"),
            format!("TimeTrigger/{spec}/subpath")
        ]
    );
}
