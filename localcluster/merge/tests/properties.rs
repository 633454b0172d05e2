//! Properties over many generated objects (deterministic pseudo-random, so failures replay):
//! no function panics, a second identical apply is a no-op, managedFields round-trip, and
//! patches that describe no change leave the object alone.

// Helpers outside `#[test]` functions unwrap too; a panic is the test failure we want.
#![allow(clippy::unwrap_used)]

use rivulet_kube_merge::{
    ApplyRequest, BuiltinSchema, FieldSet, Scope, UpdateWrite, apply, json_patch, merge_patch,
    read_managed_fields, record_update, strategic_merge_patch,
};
use serde_json::{Map, Value, json};

/// A 64-bit LCG: enough variety for shapes, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

fn scalar(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!(rng.below(3)),
        1 => json!(rng.pick(&["a", "b", "c"])),
        2 => json!(rng.below(2) == 0),
        _ => json!(format!("s{}", rng.below(5))),
    }
}

fn container(rng: &mut Rng, name: &str) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), json!(name));
    if rng.below(2) == 0 {
        c.insert("image".into(), scalar(rng));
    }
    if rng.below(2) == 0 {
        let mut envs = Vec::new();
        for name in ["A", "B", "C"] {
            if rng.below(2) == 0 {
                envs.push(json!({"name": name, "value": scalar(rng)}));
            }
        }
        c.insert("env".into(), Value::Array(envs));
    }
    if rng.below(3) == 0 {
        c.insert(
            "ports".into(),
            json!([{"containerPort": 80 + rng.below(2)}]),
        );
    }
    if rng.below(3) == 0 {
        c.insert("args".into(), json!([scalar(rng), scalar(rng)]));
    }
    Value::Object(c)
}

fn pod(rng: &mut Rng) -> Value {
    let names: Vec<&str> = ["x", "y", "z"]
        .into_iter()
        .filter(|_| rng.below(2) == 0)
        .collect();
    let containers: Vec<Value> = names.iter().map(|n| container(rng, n)).collect();
    let mut meta = json!({"name": "p", "namespace": "default"});
    if rng.below(2) == 0 {
        meta["labels"] = json!({rng.pick(&["app", "tier"]): scalar(rng)});
    }
    if rng.below(3) == 0 {
        meta["finalizers"] = json!([rng.pick(&["f1", "f2"])]);
    }
    let mut spec = json!({"containers": containers});
    if rng.below(3) == 0 {
        spec["nodeSelector"] = json!({rng.pick(&["disk", "zone"]): scalar(rng)});
    }
    if rng.below(3) == 0 {
        spec["tolerations"] = json!([{"key": scalar(rng)}]);
    }
    if rng.below(3) == 0 {
        spec["volumes"] = json!([{"name": "v", rng.pick(&["emptyDir", "hostPath"]): {}}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

const NOW: [&str; 3] = [
    "2026-11-23T08:00:00Z",
    "2026-11-23T08:01:00Z",
    "2026-11-23T08:02:00Z",
];

#[test]
fn apply_sequences_are_stable() {
    let schema = BuiltinSchema::for_kind("", "Pod");
    let mut rng = Rng(7);
    let (mut applied, mut conflicted) = (0, 0);
    for round in 0..300 {
        let managers = ["alice", "bob", "carol"];
        let mut live: Option<Value> = None;
        for step in 0..6 {
            let manager = managers[usize::try_from(rng.below(3)).unwrap()];
            let config = pod(&mut rng);
            let force = rng.below(2) == 0;
            let now = NOW[step % 3];
            let request = ApplyRequest {
                live: live.as_ref(),
                applied: &config,
                manager,
                force,
                scope: Scope::Whole,
                now,
            };
            let Ok(outcome) = apply(&request, &schema) else {
                conflicted += 1; // a conflict without force: the object stays as it was
                continue;
            };
            applied += 1;
            // The result's managedFields parse and re-serialize identically.
            for entry in read_managed_fields(&outcome.object).unwrap() {
                let v1 = entry.fields.to_fields_v1();
                assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), entry.fields);
            }
            // Re-applying the same config at another time changes nothing.
            let again = ApplyRequest {
                live: Some(&outcome.object),
                now: NOW[(step + 1) % 3],
                ..request
            };
            let second = apply(&again, &schema).unwrap();
            assert!(
                !second.changed,
                "round {round} step {step}: re-apply by {manager} changed\n{config}\n{}",
                outcome.object
            );
            live = Some(outcome.object);
        }
    }
    // Both paths were exercised (the generator is deterministic, so these counts are too).
    assert!(
        applied > 900 && conflicted > 100,
        "applied {applied}, conflicted {conflicted}"
    );
}

#[test]
fn identity_patches_and_updates_change_nothing() {
    let schema = BuiltinSchema::for_kind("", "Pod");
    let mut rng = Rng(11);
    for _ in 0..300 {
        let object = record_update(
            &UpdateWrite {
                old: None,
                manager: "m",
                scope: Scope::Whole,
                now: NOW[0],
            },
            pod(&mut rng),
            &schema,
        )
        .unwrap();
        assert_eq!(merge_patch(&object, &json!({})), object);
        assert_eq!(json_patch(&object, &json!([])).unwrap(), object);
        assert_eq!(
            strategic_merge_patch(&object, &json!({}), &schema).unwrap(),
            object
        );
        // Patching in the object itself is a no-op too (lists merge into themselves).
        assert_eq!(
            strategic_merge_patch(&object, &object, &schema).unwrap(),
            object
        );
        let same = record_update(
            &UpdateWrite {
                old: Some(&object),
                manager: "other",
                scope: Scope::Whole,
                now: NOW[1],
            },
            object.clone(),
            &schema,
        )
        .unwrap();
        assert_eq!(same, object);
    }
}

#[test]
fn random_strategic_patches_never_panic() {
    let schema = BuiltinSchema::for_kind("", "Pod");
    let mut rng = Rng(13);
    for _ in 0..500 {
        let original = pod(&mut rng);
        let mut patch = pod(&mut rng);
        let (section, key, value) = match rng.below(4) {
            0 => (
                "spec",
                "containers",
                json!([{"name": "x", "$patch": "delete"}, {"$patch": "replace"}]),
            ),
            1 => (
                "spec",
                "$setElementOrder/containers",
                json!([{"name": "z"}, {"name": "x"}]),
            ),
            2 => (
                "metadata",
                "$deleteFromPrimitiveList/finalizers",
                json!(["f1"]),
            ),
            _ => ("spec", "containers", json!([{"image": "no-key"}])),
        };
        patch[section][key] = value;
        let _ = strategic_merge_patch(&original, &patch, &schema);
    }
}
