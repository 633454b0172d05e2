//! Every generated CRD schema must be structural (so a real kube-apiserver accepts it), and must
//! accept every valid fixture (so the schema is never stricter than Fission).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use rivulet_api::crds;
use rivulet_kube_schema::{
    FieldPath, Schema, aggregate_message, check_crd_with, check_structural, validate_object,
};
use serde_json::Value;

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

#[test]
fn every_generated_schema_is_structural() {
    let all = crds::fission_crds().into_iter().chain([
        crds::namespace_offloading_crd(true),
        crds::namespace_offloading_crd(false),
    ]);
    for crd in all {
        let errors = check_structural(&schema_of(&crd));
        assert!(
            errors.is_empty(),
            "{} is not structural:\n{}",
            crd.metadata.name.unwrap_or_default(),
            aggregate_message(&errors)
        );
    }
}

/// The whole CRD (names, printer columns, subresources, strict structural rules) as a kube-apiserver
/// checks it, in strict mode so the CRDs are portable to every supported cluster version.
#[test]
fn every_generated_crd_passes_the_apiserver_crd_checks() {
    let all = crds::fission_crds().into_iter().chain([
        crds::namespace_offloading_crd(true),
        crds::namespace_offloading_crd(false),
    ]);
    for crd in all {
        let errors = check_crd_with(&serde_json::to_value(&crd).unwrap(), true);
        assert!(
            errors.is_empty(),
            "{} would be rejected:\n{}",
            crd.metadata.name.unwrap_or_default(),
            aggregate_message(&errors)
        );
    }
}

#[test]
fn valid_fixtures_pass_the_generated_schemas() {
    let schemas: Vec<(String, Schema)> = crds::fission_crds()
        .iter()
        .map(|crd| {
            let mut errors = Vec::new();
            let schema = Schema::parse(
                &schema_of(crd),
                &FieldPath::new("openAPIV3Schema"),
                &mut errors,
            );
            assert!(errors.is_empty(), "{}", aggregate_message(&errors));
            (crd.spec.names.kind.clone(), schema)
        })
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let kind = value["kind"].as_str().unwrap().to_owned();
            let (_, schema) = schemas.iter().find(|(k, _)| *k == kind).unwrap();
            let errors = validate_object(schema, &value);
            assert!(
                errors.is_empty(),
                "{} ({kind}) is rejected by the generated schema:\n{}",
                path.display(),
                aggregate_message(&errors)
            );
            checked += 1;
        }
    }
    assert!(checked >= 15);
}
