//! Liqo's `NamespaceOffloading` CRD (reference/liqo.md §1), written after Liqo's own CRD files:
//! v1beta1 (Liqo ≥ 1.0, with `remoteNamespaceName` and `SelectedName`) or v1alpha1 (≤ 0.10).
//! A caller that has the typed CRD (rivulet-api) can pass it instead.

use serde_json::{Value, json};

/// API group.
pub const GROUP: &str = "offloading.liqo.io";
/// Plural resource name.
pub const PLURAL: &str = "namespaceoffloadings";
/// The only accepted object name.
pub const NAME: &str = "offloading";

fn node_selector_schema() -> Value {
    let requirement = json!({
        "type": "object", "required": ["key", "operator"],
        "properties": {
            "key": {"type": "string"},
            "operator": {"type": "string"},
            "values": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
        },
    });
    json!({
        "type": "object", "required": ["nodeSelectorTerms"],
        "x-kubernetes-map-type": "atomic",
        "properties": {"nodeSelectorTerms": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {
            "type": "object", "x-kubernetes-map-type": "atomic",
            "properties": {
                "matchExpressions": {"type": "array", "items": requirement, "x-kubernetes-list-type": "atomic"},
                "matchFields": {"type": "array", "items": requirement, "x-kubernetes-list-type": "atomic"},
            },
        }}},
    })
}

/// The CRD serving exactly one version.
pub fn namespace_offloading_crd(v1alpha1: bool) -> Value {
    let version = if v1alpha1 { "v1alpha1" } else { "v1beta1" };
    let mut mapping = vec!["EnforceSameName", "DefaultName"];
    let mut spec_props = json!({
        "podOffloadingStrategy": {"type": "string", "default": "LocalAndRemote",
            "enum": ["Local", "Remote", "LocalAndRemote"],
            "description": "PodOffloadingStrategy allows users to configure how pods in this namespace are offloaded."},
        "clusterSelector": node_selector_schema(),
    });
    if !v1alpha1 {
        mapping.push("SelectedName");
        spec_props["remoteNamespaceName"] = json!({"type": "string",
            "description": "RemoteNamespaceName allows users to choose a specific name for the remote namespace (SelectedName strategy)."});
    }
    spec_props["namespaceMappingStrategy"] = json!({"type": "string", "default": "DefaultName", "enum": mapping,
        "description": "NamespaceMappingStrategy allows users to map remote namespaces (immutable)."});
    let condition = json!({"type": "object", "required": ["status", "type"], "properties": {
        "type": {"type": "string"}, "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"}, "message": {"type": "string"},
    }});
    let short: Vec<&str> = if v1alpha1 {
        vec!["nsof"]
    } else {
        vec!["nso", "nsof", "nsoff", "nsoffloading"]
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": "NamespaceOffloading", "listKind": "NamespaceOffloadingList",
                "plural": PLURAL, "singular": "namespaceoffloading",
                "shortNames": short, "categories": ["liqo"]},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "NamespaceMappingStrategy", "type": "string", "jsonPath": ".spec.namespaceMappingStrategy"},
                    {"name": "PodOffloadingStrategy", "type": "string", "jsonPath": ".spec.podOffloadingStrategy"},
                    {"name": "OffloadingPhase", "type": "string", "jsonPath": ".status.offloadingPhase"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object", "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                        "spec": {"type": "object", "properties": spec_props},
                        "status": {"type": "object", "properties": {
                            "observedGeneration": {"type": "integer", "format": "int64"},
                            "offloadingPhase": {"type": "string", "enum": ["Ready", "NoClusterSelected", "InProgress", "SomeFailed", "AllFailed", "Terminating"]},
                            "remoteNamespaceName": {"type": "string"},
                            "remoteNamespacesConditions": {"type": "object", "additionalProperties": {"type": "array", "items": condition}},
                        }},
                    },
                }},
            }],
        },
    })
}
