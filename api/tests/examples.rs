//! Every document in `examples/` is a valid Fission object (or a plain Kubernetes object), passes
//! the generated CRD schema, and each Package literal is exactly the source file its
//! `# source:` comment names, so the examples never drift from the runtimes' example code.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use rivulet_api::{FissionObject, crds};
use rivulet_kube_schema::{FieldPath, Schema, aggregate_message, validate_object};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(repo().join("examples")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                if file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
                {
                    files.push(file);
                }
            }
        }
    }
    files.sort();
    files
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (value(*c) << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    out
}

#[test]
fn examples_are_valid_and_in_sync_with_their_sources() {
    let schemas: Vec<(String, Schema)> = crds::fission_crds()
        .iter()
        .map(|crd| {
            let raw = serde_json::to_value(
                crd.spec.versions[0]
                    .schema
                    .as_ref()
                    .unwrap()
                    .open_api_v3_schema
                    .as_ref()
                    .unwrap(),
            )
            .unwrap();
            let mut errors = Vec::new();
            (
                crd.spec.names.kind.clone(),
                Schema::parse(&raw, &FieldPath::new("openAPIV3Schema"), &mut errors),
            )
        })
        .collect();
    let files = example_files();
    assert!(
        files.len() >= 4,
        "expected the hello-python, hello-nodejs, greet and multicluster examples"
    );
    let mut packages = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in text.split("\n---\n").enumerate() {
            let at = format!("{} document {i}", file.display());
            let value: Value = serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
            if value["apiVersion"] != "fission.io/v1" {
                continue;
            }
            let object =
                FissionObject::from_value(value.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
            let errors = object.validate();
            assert!(errors.is_empty(), "{at}: {errors}");
            let kind = value["kind"].as_str().unwrap();
            let (_, schema) = schemas.iter().find(|(k, _)| k == kind).unwrap();
            let schema_errors = validate_object(schema, &value);
            assert!(
                schema_errors.is_empty(),
                "{at}: {}",
                aggregate_message(&schema_errors)
            );
            if kind == "Package" {
                let source = doc
                    .lines()
                    .find_map(|l| l.strip_prefix("# source: "))
                    .unwrap_or_else(|| panic!("{at}: Package without `# source:`"));
                let literal = value["spec"]["deployment"]["literal"].as_str().unwrap();
                let expected = std::fs::read(repo().join(source)).unwrap();
                assert!(
                    base64_decode(literal) == expected,
                    "{at}: literal differs from {source}; regenerate it with `base64 -w0 {source}`"
                );
                packages += 1;
            }
        }
    }
    assert!(packages >= 4);
}
