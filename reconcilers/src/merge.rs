//! Fission's merge of user-supplied `Container`/`PodSpec` fragments into generated ones
//! (`runtime.container`, `runtime.podspec`, function `podspec`), as pure functions.
//!
//! Rules (Fission's `MergeContainer` / `MergePodSpec`): fields set in the fragment win; lists of
//! named items (containers, volumes, env, ports, volume mounts, image pull secrets) are merged by
//! `name` — an item with an existing name is merged into it, a new name is appended; other lists
//! (tolerations, host aliases, args) are appended without exact duplicates.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A fragment could not be merged (it does not fit the target type once merged).
#[derive(Debug, thiserror::Error)]
#[error("cannot merge {what}: {source}")]
pub struct MergeError {
    /// Which fragment, as a field path (for example `spec.runtime.podspec`).
    pub what: String,
    /// Why the merged value is not a valid object.
    pub source: serde_json::Error,
}

/// Merges `fragment` over `base` with Fission's rules.
pub fn merge<T: Serialize + DeserializeOwned>(
    base: &T,
    fragment: &T,
    what: &str,
) -> Result<T, MergeError> {
    let err = |source| MergeError {
        what: what.to_owned(),
        source,
    };
    let mut merged = serde_json::to_value(base).map_err(err)?;
    merge_values(&mut merged, serde_json::to_value(fragment).map_err(err)?);
    serde_json::from_value(merged).map_err(err)
}

fn merge_values(base: &mut Value, fragment: Value) {
    match (base, fragment) {
        (Value::Object(base), Value::Object(fragment)) => {
            for (key, value) in fragment {
                match base.get_mut(&key) {
                    Some(existing) => merge_values(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(fragment)) => {
            for item in fragment {
                let name = item.get("name").and_then(Value::as_str);
                let same_name = name.and_then(|name| {
                    base.iter()
                        .position(|b| b.get("name").and_then(Value::as_str) == Some(name))
                });
                match same_name {
                    Some(index) => merge_values(&mut base[index], item),
                    None if !base.contains(&item) => base.push(item),
                    None => {}
                }
            }
        }
        (_, Value::Null) => {}
        (base, fragment) => *base = fragment,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::merge;

    fn pod(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn containers_merge_by_name_and_append_new_ones() {
        let base = pod(serde_json::json!({"containers": [
            {"name": "python", "image": "fission/python-env", "env": [{"name": "A", "value": "1"}]},
            {"name": "fetcher", "image": "rivulet"}
        ]}));
        let fragment = pod(serde_json::json!({
            "containers": [
                {"name": "python", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                {"name": "sidecar", "image": "busybox"}
            ],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"}
        }));
        let merged = merge(&base, &fragment, "spec.runtime.podspec").unwrap();
        let names: Vec<&str> = merged.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["python", "fetcher", "sidecar"]);
        let env: Vec<(String, Option<String>)> = merged.containers[0]
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect();
        assert_eq!(
            env,
            [
                ("A".into(), Some("2".into())),
                ("B".into(), Some("3".into()))
            ]
        );
        assert_eq!(
            merged.containers[0].image.as_deref(),
            Some("fission/python-env"),
            "unset fields keep the base"
        );
        assert_eq!(merged.tolerations.unwrap().len(), 1);
        assert_eq!(merged.node_selector.unwrap()["disk"], "ssd");
    }

    #[test]
    fn fragment_scalars_win_and_lists_do_not_duplicate() {
        let base: Container = serde_json::from_value(
            serde_json::json!({"name": "c", "args": ["x"], "workingDir": "/a"}),
        )
        .unwrap();
        let fragment: Container = serde_json::from_value(
            serde_json::json!({"name": "c", "args": ["x", "y"], "workingDir": "/b"}),
        )
        .unwrap();
        let merged = merge(&base, &fragment, "spec.runtime.container").unwrap();
        assert_eq!(merged.args.unwrap(), ["x", "y"]);
        assert_eq!(merged.working_dir.as_deref(), Some("/b"));
    }
}
