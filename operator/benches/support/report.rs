//! A benchmark run's numbers: printed as they come, written as one JSON file, compared with an
//! earlier run's file (`--baseline FILE`) as ratios.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Command-line options after `cargo bench ... --`.
pub struct Options {
    /// Where this run's JSON goes.
    pub json: PathBuf,
    /// An earlier run's JSON to compare with.
    pub baseline: Option<PathBuf>,
    /// Scenarios to run (all when empty).
    pub only: Vec<String>,
}

impl Options {
    /// Reads `--json FILE`, `--baseline FILE`, `--only a,b`; ignores the `--bench` cargo adds.
    pub fn from_args(default_json: &str) -> Self {
        let mut options = Options {
            json: PathBuf::from(default_json),
            baseline: None,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--json" => options.json = value().into(),
                "--baseline" => options.baseline = Some(value().into()),
                "--only" => options.only = value().split(',').map(str::to_owned).collect(),
                "--bench" => {}
                other => panic!("unknown argument {other:?} (known: --json, --baseline, --only)"),
            }
        }
        options
    }

    pub fn runs(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

/// Whether a larger value is better.
#[derive(Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

/// The metrics of one run, in the order they were measured.
#[derive(Default)]
pub struct Run {
    metrics: Vec<(String, f64, &'static str, Better)>,
    goals: Vec<(String, bool)>,
}

impl Run {
    pub fn add(&mut self, name: &str, value: f64, unit: &'static str, better: Better) {
        self.metrics.push((name.to_owned(), value, unit, better));
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, v, ..)| *v)
    }

    /// A goal of the issue, checked on this run's numbers.
    pub fn goal(&mut self, text: String, met: bool) {
        self.goals.push((text, met));
    }

    /// Prints the goals, writes the JSON file and, given a baseline, the ratios to it.
    pub fn finish(&self, options: &Options) {
        if !self.goals.is_empty() {
            println!("\ngoals\n| goal | met |\n| --- | --- |");
            for (text, met) in &self.goals {
                println!("| {text} | {} |", if *met { "yes" } else { "**no**" });
            }
        }
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let metrics: serde_json::Map<String, Value> = self
            .metrics
            .iter()
            .map(|(name, value, unit, better)| {
                let better = match better {
                    Better::Lower => "lower",
                    Better::Higher => "higher",
                };
                (
                    name.clone(),
                    json!({"value": value, "unit": unit, "better": better}),
                )
            })
            .collect();
        let goals: serde_json::Map<String, Value> = self
            .goals
            .iter()
            .map(|(text, met)| (text.clone(), Value::Bool(*met)))
            .collect();
        let document = json!({
            "commit": git_commit(),
            "load_average_at_end": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            "metrics": metrics,
            "goals": goals,
        });
        std::fs::write(
            &options.json,
            serde_json::to_string_pretty(&document).unwrap(),
        )
        .unwrap();
        println!("\nthis run: {}", options.json.display());
        if let Some(baseline) = &options.baseline {
            self.compare(baseline);
        }
    }

    fn compare(&self, baseline: &Path) {
        let text = std::fs::read_to_string(baseline)
            .unwrap_or_else(|e| panic!("baseline {}: {e}", baseline.display()));
        let document: Value = serde_json::from_str(&text).unwrap();
        let old: BTreeMap<String, f64> = document["metrics"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v["value"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "\ncompared with {} ({})\n| metric | baseline | this run | this / baseline |\n| --- | --- | --- | --- |",
            baseline.display(),
            document["commit"].as_str().unwrap_or("?")
        );
        for (name, value, unit, better) in &self.metrics {
            let Some(before) = old.get(name) else {
                continue;
            };
            let ratio = if *before == 0.0 {
                "-".to_owned()
            } else {
                let r = value / before;
                let worse = match better {
                    Better::Lower => r > 1.05,
                    Better::Higher => r < 0.95,
                };
                format!("{r:.2}{}", if worse { " (worse)" } else { "" })
            };
            println!("| {name} | {before:.1} {unit} | {value:.1} {unit} | {ratio} |");
        }
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
