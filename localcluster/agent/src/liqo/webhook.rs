//! Liqo's admission webhooks, simulated through localcluster's create hooks: the pod mutation
//! (reference/liqo.md §2.4, only on CREATE) and the NamespaceOffloading name check (§1.1).

use rivulet_localcluster::hooks::{CreateHook, ObjectReader};
use serde_json::{Value, json};

use super::crd;

/// Namespace label that enables the pod webhook.
pub const SCHEDULING_ENABLED: &str = "liqo.io/scheduling-enabled";
/// Key of the virtual node taint and of the toleration the webhook adds.
pub const TOLERATION_KEY: &str = "virtual-node.liqo.io/not-allowed";
/// Label key of the node type.
pub const TYPE_LABEL: &str = "liqo.io/type";
/// Its value on virtual nodes.
pub const VIRTUAL_NODE: &str = "virtual-node";

fn type_requirement(op: &str) -> Value {
    json!({"key": TYPE_LABEL, "operator": op, "values": [VIRTUAL_NODE]})
}

/// ANDs two terms (Liqo `utils.MergeNodeSelector` works term by term).
fn and_terms(a: &Value, b: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for field in ["matchExpressions", "matchFields"] {
        let items: Vec<Value> = [a, b]
            .iter()
            .flat_map(|t| t[field].as_array().cloned().unwrap_or_default())
            .collect();
        if !items.is_empty() {
            out.insert(field.into(), Value::Array(items));
        }
    }
    Value::Object(out)
}

/// The node selector terms a strategy and cluster selector impose, or `None` for no affinity.
pub fn imposed_terms(strategy: &str, selector_terms: &[Value]) -> Option<Vec<Value>> {
    match strategy {
        "Remote" if selector_terms.is_empty() => {
            Some(vec![json!({"matchExpressions": [type_requirement("In")]})])
        }
        "Remote" => Some(
            selector_terms
                .iter()
                .map(|t| and_terms(t, &json!({"matchExpressions": [type_requirement("In")]})))
                .collect(),
        ),
        "LocalAndRemote" if !selector_terms.is_empty() => {
            let mut terms = selector_terms.to_vec();
            terms.push(json!({"matchExpressions": [type_requirement("NotIn")]}));
            Some(terms)
        }
        _ => None,
    }
}

/// Mutates a pod as Liqo's webhook does for the NamespaceOffloading `spec` of its namespace.
pub fn mutate_pod(pod: &mut Value, offloading_spec: &Value) {
    let strategy = offloading_spec["podOffloadingStrategy"]
        .as_str()
        .unwrap_or("LocalAndRemote");
    if strategy == "Local" {
        return;
    }
    let toleration = json!({"key": TOLERATION_KEY, "operator": "Exists", "effect": "NoExecute"});
    let tolerations = &mut pod["spec"]["tolerations"];
    if !tolerations.is_array() {
        *tolerations = json!([]);
    }
    if let Some(list) = tolerations.as_array_mut()
        && !list.contains(&toleration)
    {
        list.push(toleration);
    }
    let selector_terms = offloading_spec["clusterSelector"]["nodeSelectorTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(imposed) = imposed_terms(strategy, &selector_terms) else {
        return;
    };
    let required = &mut pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    let existing = required["nodeSelectorTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let merged: Vec<Value> = if existing.is_empty() {
        imposed
    } else {
        imposed
            .iter()
            .flat_map(|i| existing.iter().map(move |e| and_terms(i, e)))
            .collect()
    };
    *required = json!({"nodeSelectorTerms": merged});
}

/// The pod webhook as a create hook.
#[derive(Debug, Default)]
pub struct PodWebhook;

impl CreateHook for PodWebhook {
    fn applies_to(&self, group: &str, resource: &str) -> bool {
        group.is_empty() && resource == "pods"
    }

    fn mutate(&self, object: &mut Value, read: &dyn ObjectReader) -> Result<(), String> {
        let Some(ns) = object["metadata"]["namespace"].as_str().map(str::to_string) else {
            return Ok(());
        };
        let enabled = read
            .get("", "namespaces", None, &ns)
            .is_some_and(|n| n["metadata"]["labels"][SCHEDULING_ENABLED] == "true");
        if !enabled {
            return Ok(());
        }
        let Some(offloading) = read.get(crd::GROUP, crd::PLURAL, Some(&ns), crd::NAME) else {
            return Err(format!(
                "failed retrieving NamespaceOffloading: namespaceoffloadings.{} \"{}\" not found in namespace {ns}",
                crd::GROUP,
                crd::NAME
            ));
        };
        mutate_pod(object, &offloading["spec"]);
        Ok(())
    }
}

/// The NamespaceOffloading validating webhook's create checks.
#[derive(Debug, Default)]
pub struct OffloadingWebhook;

impl CreateHook for OffloadingWebhook {
    fn applies_to(&self, group: &str, resource: &str) -> bool {
        group == crd::GROUP && resource == crd::PLURAL
    }

    fn mutate(&self, object: &mut Value, _read: &dyn ObjectReader) -> Result<(), String> {
        if object["metadata"]["name"].as_str() != Some(crd::NAME) {
            return Err(format!("NamespaceOffloading name must match {}", crd::NAME));
        }
        let spec = &object["spec"];
        if spec["namespaceMappingStrategy"] == "SelectedName"
            && spec["remoteNamespaceName"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            return Err("The RemoteNamespaceName value cannot be empty when using the SelectedName NamespaceMappingStrategy".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    }

    const TOL: &str =
        r#"[{"effect":"NoExecute","key":"virtual-node.liqo.io/not-allowed","operator":"Exists"}]"#;

    #[test]
    fn local_changes_nothing() {
        let mut p = pod();
        mutate_pod(&mut p, &json!({"podOffloadingStrategy": "Local"}));
        assert_eq!(p, pod());
    }

    #[test]
    fn local_and_remote_without_selector_adds_only_the_toleration() {
        let mut p = pod();
        mutate_pod(
            &mut p,
            &json!({"podOffloadingStrategy": "LocalAndRemote", "clusterSelector": {"nodeSelectorTerms": []}}),
        );
        assert_eq!(p["spec"]["tolerations"].to_string(), TOL);
        assert!(p["spec"].get("affinity").is_none());
        // Idempotent.
        mutate_pod(&mut p, &json!({}));
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn local_and_remote_with_selector_keeps_local_nodes_allowed() {
        let mut p = pod();
        let sel = json!({"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]});
        mutate_pod(
            &mut p,
            &json!({"clusterSelector": {"nodeSelectorTerms": [sel.clone()]}}),
        );
        let terms = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms[0], sel);
        assert_eq!(terms[1]["matchExpressions"][0], type_requirement("NotIn"));
    }

    #[test]
    fn remote_requires_virtual_nodes_and_merges_with_pod_affinity() {
        let mut p = pod();
        p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "b", "operator": "Exists"}]},
        ]}}});
        mutate_pod(&mut p, &json!({"podOffloadingStrategy": "Remote"}));
        let terms =
            p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"]
                .as_array()
                .unwrap()
                .clone();
        assert_eq!(terms.len(), 2);
        assert_eq!(
            terms[0]["matchExpressions"],
            json!([type_requirement("In"), {"key": "a", "operator": "Exists"}])
        );
        assert_eq!(
            terms[1]["matchExpressions"],
            json!([type_requirement("In"), {"key": "b", "operator": "Exists"}])
        );
        assert_eq!(p["spec"]["tolerations"].to_string(), TOL);
    }

    #[test]
    fn only_the_name_offloading_is_accepted() {
        struct Nothing;
        impl ObjectReader for Nothing {
            fn get(&self, _: &str, _: &str, _: Option<&str>, _: &str) -> Option<Value> {
                None
            }
        }
        let mut o = json!({"metadata": {"name": "other"}, "spec": {}});
        assert_eq!(
            OffloadingWebhook.mutate(&mut o, &Nothing).unwrap_err(),
            "NamespaceOffloading name must match offloading"
        );
        let mut o = json!({"metadata": {"name": "offloading"}, "spec": {}});
        assert!(OffloadingWebhook.mutate(&mut o, &Nothing).is_ok());
    }
}
