//! Checks CustomResourceDefinition JSON files as a kube-apiserver would on create, and prints
//! the advisory lint findings too. Convert YAML first, e.g. with
//! `python3 -c 'import sys,yaml,json; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'`.
//!
//! `cargo run -p rivulet-kube-schema --example check_crd -- [--strict] FILE.json...`
//! Exits 1 when any file has errors (lint findings alone do not fail).

use std::process::ExitCode;

use rivulet_kube_schema::{check_crd_with, lint_crd};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strict = args.iter().any(|a| a == "--strict");
    let mut failed = false;
    for file in args.iter().filter(|a| *a != "--strict") {
        let crd: serde_json::Value = match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{file}: {e}");
                failed = true;
                continue;
            }
        };
        let errors = check_crd_with(&crd, strict);
        let lint = lint_crd(&crd);
        println!(
            "{file}: {} error(s), {} lint finding(s)",
            errors.len(),
            lint.len()
        );
        for e in &errors {
            println!("  error: {e}");
        }
        for l in &lint {
            println!("  lint:  {l}");
        }
        failed |= !errors.is_empty();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
