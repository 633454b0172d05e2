//! Runs custom resources through the write path a kube-apiserver applies (default, prune,
//! validate) against the CRD whose group and kind they name, and prints what changed and what
//! failed. Files are JSON (one object, or a list of objects); convert YAML first.
//!
//! `cargo run -p rivulet-kube-schema --example conform -- CRD.json... -- OBJECT.json...`
//! Exits 1 when any object is invalid or names no given CRD.

use std::process::ExitCode;

use rivulet_kube_schema::{StructuralSchema, aggregate_message, version_schema};
use serde_json::Value;

fn read(file: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    Ok(match v {
        Value::Array(items) => items,
        other => vec![other],
    })
}

fn schema_for<'a>(crds: &'a [Value], obj: &Value) -> Option<&'a Value> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let (group, version) = api_version.split_once('/')?;
    let kind = obj.get("kind")?.as_str()?;
    crds.iter()
        .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind)
        .and_then(|c| version_schema(c, version))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut failed = false;
    let mut crds = Vec::new();
    for file in &args[..split] {
        match read(file) {
            Ok(v) => crds.extend(v),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for file in args.iter().skip(split + 1) {
        let objects = match read(file) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
                continue;
            }
        };
        for mut obj in objects {
            let name = format!(
                "{file}: {} {}",
                obj["kind"].as_str().unwrap_or("?"),
                obj["metadata"]["name"].as_str().unwrap_or("?")
            );
            let Some(schema) = schema_for(&crds, &obj) else {
                println!("{name}: no CRD given for this apiVersion/kind");
                failed = true;
                continue;
            };
            let schema = match StructuralSchema::parse(schema) {
                Ok(s) => s,
                Err(errors) => {
                    println!(
                        "{name}: the CRD schema is not structural: {}",
                        aggregate_message(&errors)
                    );
                    failed = true;
                    continue;
                }
            };
            let before = obj.clone();
            let unknown = schema.coerce(&mut obj);
            let errors = schema.validate(&obj);
            let verdict = if errors.is_empty() {
                "valid"
            } else {
                "INVALID"
            };
            println!(
                "{name}: {verdict}{}",
                if before == obj {
                    ""
                } else {
                    " (defaulted/pruned)"
                }
            );
            for u in &unknown {
                println!("  unknown field {u:?}");
            }
            for e in &errors {
                println!("  {e}");
            }
            failed |= !errors.is_empty();
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
