//! Compatibility fixtures: YAML as Fission users write it.
//!
//! `fixtures/valid/*.yaml` must deserialize, validate, and serialize back to the same JSON value
//! (no field lost or renamed; explicit nulls may be dropped). Every document of
//! `fixtures/invalid/*.yaml` carries `# expect: <field>` and must fail validation on that field.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use rivulet_api::FissionObject;
use serde_json::Value;

fn fixture_files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// Splits a multi-document YAML file, keeping each document's text (for its comments).
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
    });
    docs
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[test]
fn valid_fixtures_round_trip_and_validate() {
    let mut checked = 0;
    for file in fixture_files("valid") {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in documents(&text).iter().enumerate() {
            let at = format!("{} document {i}", file.display());
            let original: Value =
                serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
            let object =
                FissionObject::from_value(original.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
            let errors = object.validate();
            assert!(
                errors.is_empty(),
                "{at}: unexpected validation errors: {errors}"
            );
            let round_trip = object.to_value().unwrap();
            assert_eq!(
                round_trip,
                without_nulls(original),
                "{at}: round trip changed the document"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} valid documents");
}

#[test]
fn invalid_fixtures_fail_on_the_expected_field() {
    let mut checked = 0;
    for file in fixture_files("invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in documents(&text).iter().enumerate() {
            let at = format!("{} document {i}", file.display());
            let expected = doc
                .lines()
                .find_map(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{at}: missing `# expect: <field>` comment"));
            let value: Value = serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
            let object = FissionObject::from_value(value).unwrap_or_else(|e| panic!("{at}: {e}"));
            let errors = object.validate();
            assert!(
                errors.fields().contains(&expected),
                "{at}: expected an error on {expected}, got [{errors}]"
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} invalid documents");
}

#[test]
fn literal_over_256_kib_is_refused() {
    use std::fmt::Write;
    // Minimal base64 to keep the test free of extra dependencies.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let limit = rivulet_api::defaults::ARCHIVE_LITERAL_SIZE_LIMIT;
    for (size, ok) in [(limit, true), (limit + 1, false)] {
        let bytes = vec![b'x'; size];
        let mut b64 = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    b64.push('=');
                }
            }
        }
        let mut doc = String::new();
        write!(
            doc,
            "{{\"apiVersion\":\"fission.io/v1\",\"kind\":\"Package\",\"metadata\":{{\"name\":\"big\",\"namespace\":\"default\"}},\
             \"spec\":{{\"environment\":{{\"name\":\"python\"}},\"deployment\":{{\"type\":\"literal\",\"literal\":\"{b64}\"}}}}}}"
        )
        .unwrap();
        let object = FissionObject::from_value(serde_json::from_str(&doc).unwrap()).unwrap();
        let errors = object.validate();
        assert_eq!(errors.is_empty(), ok, "size {size}: {errors}");
        if !ok {
            assert_eq!(errors.fields(), ["spec.deployment.literal"]);
        }
    }
}
