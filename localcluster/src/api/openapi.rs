//! `/openapi/v3` (root and one document per group/version) and `/openapi/v2` (JSON), built from
//! the built-in kinds' schemas (k8s-openapi's, which carry k8s.io/api's descriptions) and the
//! stored CRDs' `openAPIV3Schema`s, shaped as kube-apiserver publishes them so that
//! `kubectl explain` works (it reads v3 first).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::{
    apps, authorization, autoscaling, coordination, core, discovery, events, networking, policy,
    rbac,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::registry::Catalog;
use crate::resources::ResourceInfo;

/// Which document flavour: v2 keeps `$ref` siblings under `#/definitions/`, v3 wraps a `$ref`
/// with siblings in `allOf` under `#/components/schemas/` (as upstream does for each).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn generator(self) -> SchemaGenerator {
        match self {
            Flavor::V3 => SchemaSettings::openapi3()
                .with(|s| s.meta_schema = None)
                .into_generator(),
            Flavor::V2 => SchemaSettings::draft07()
                .with(|s| {
                    s.meta_schema = None;
                    s.transforms.clear();
                })
                .into_generator(),
        }
    }

    fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }
}

/// A built-in kind: adds its schema (and every schema it refers to) to the generator.
type AddKind = fn(&mut SchemaGenerator) -> String;

fn add<T: JsonSchema + k8s_openapi::Resource>(g: &mut SchemaGenerator) -> String {
    g.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// (group, version, kind) of every built-in kind localcluster serves, with its schema.
const BUILTIN_SCHEMAS: &[(&str, &str, &str, AddKind)] = &[
    ("", "v1", "Namespace", add::<core::v1::Namespace>),
    ("", "v1", "Pod", add::<core::v1::Pod>),
    ("", "v1", "Service", add::<core::v1::Service>),
    ("", "v1", "Endpoints", add::<core::v1::Endpoints>),
    ("", "v1", "ConfigMap", add::<core::v1::ConfigMap>),
    ("", "v1", "Secret", add::<core::v1::Secret>),
    ("", "v1", "ServiceAccount", add::<core::v1::ServiceAccount>),
    ("", "v1", "Node", add::<core::v1::Node>),
    ("", "v1", "Event", add::<core::v1::Event>),
    ("events.k8s.io", "v1", "Event", add::<events::v1::Event>),
    ("apps", "v1", "Deployment", add::<apps::v1::Deployment>),
    ("apps", "v1", "ReplicaSet", add::<apps::v1::ReplicaSet>),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        add::<autoscaling::v2::HorizontalPodAutoscaler>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        add::<networking::v1::Ingress>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        add::<networking::v1::NetworkPolicy>,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        add::<discovery::v1::EndpointSlice>,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        add::<coordination::v1::Lease>,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        add::<policy::v1::PodDisruptionBudget>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        add::<rbac::v1::Role>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        add::<rbac::v1::ClusterRole>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        add::<rbac::v1::RoleBinding>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        add::<rbac::v1::ClusterRoleBinding>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        add::<authorization::v1::SelfSubjectAccessReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        add::<authorization::v1::SelfSubjectRulesReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        add::<authorization::v1::SubjectAccessReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        add::<authorization::v1::LocalSubjectAccessReview>,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        add::<apiext::CustomResourceDefinition>,
    ),
];

/// The schemas of one group/version's built-in kinds, keyed by definition name, each kind's
/// carrying `x-kubernetes-group-version-kind`.
fn builtin_schemas(flavor: Flavor, group: &str, version: &str) -> Map<String, Value> {
    let mut g = flavor.generator();
    let mut kinds = Vec::new();
    for (gr, v, kind, add) in BUILTIN_SCHEMAS {
        if *gr == group && *v == version {
            kinds.push((add(&mut g), *kind));
        }
    }
    if kinds.is_empty() {
        return Map::new();
    }
    let mut defs = g.take_definitions(true);
    for (name, kind) in kinds {
        if let Some(Value::Object(s)) = defs.get_mut(&name) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                gvk(group, version, kind),
            );
        }
    }
    defs
}

/// ObjectMeta and what it refers to, for the CRD documents.
fn object_meta_schemas(flavor: Flavor) -> (String, Map<String, Value>) {
    let mut g = flavor.generator();
    g.subschema_for::<ObjectMeta>();
    (
        ObjectMeta::schema_name().into_owned(),
        g.take_definitions(true),
    )
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// The definition name upstream gives a custom resource: reversed group, version, kind
/// (`fission.io`/`v1`/`Function` → `io.fission.v1.Function`).
fn crd_definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// A CRD version's schema as upstream publishes it: apiVersion/kind/metadata described, the
/// metadata a reference to ObjectMeta, the GVK extension added.
fn crd_schema(flavor: Flavor, info: &ResourceInfo, schema: &Value, meta_ref: &str) -> Value {
    let mut s = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    s.entry("type").or_insert_with(|| json!("object"));
    let props = s
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": KIND_DESCRIPTION}),
        );
        let target = format!("{}{meta_ref}", flavor.ref_prefix());
        let meta = match flavor {
            Flavor::V3 => json!({"allOf": [{"$ref": target}], "description": METADATA_DESCRIPTION}),
            Flavor::V2 => json!({"$ref": target, "description": METADATA_DESCRIPTION}),
        };
        props.insert("metadata".into(), meta);
    }
    s.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk(&info.group, &info.version, &info.kind),
    );
    Value::Object(s)
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The `openAPIV3Schema` of `version` in a stored CRD.
fn stored_crd_schema(crds: &[Value], info: &ResourceInfo) -> Option<Value> {
    crds.iter()
        .filter(|c| {
            c["spec"]["group"].as_str() == Some(info.group.as_str())
                && c["spec"]["names"]["plural"].as_str() == Some(info.plural.as_str())
        })
        .flat_map(|c| {
            c["spec"]["versions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|v| v["name"].as_str() == Some(info.version.as_str()))
        .and_then(|v| v["schema"].get("openAPIV3Schema").cloned())
}

/// Every schema of one group/version: built-in kinds from k8s-openapi, custom ones from `crds`.
fn schemas(
    flavor: Flavor,
    catalog: &Catalog,
    crds: &[Value],
    group: &str,
    version: &str,
) -> Map<String, Value> {
    let mut defs = builtin_schemas(flavor, group, version);
    let custom: Vec<_> = catalog
        .in_group_version(group, version)
        .filter(|r| r.custom)
        .collect();
    if !custom.is_empty() {
        let (meta_name, meta_defs) = object_meta_schemas(flavor);
        defs.extend(meta_defs);
        for info in custom {
            // A CRD without a schema still gets a document, as upstream (fields unknown).
            let schema = stored_crd_schema(crds, info).unwrap_or_else(|| json!({}));
            defs.insert(
                crd_definition_name(&info.group, &info.version, &info.kind),
                crd_schema(flavor, info, &schema, &meta_name),
            );
        }
    }
    defs
}

/// The definition name of a served resource's kind in `defs`.
fn kind_definition(defs: &Map<String, Value>, info: &ResourceInfo) -> Option<String> {
    defs.iter()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|a| {
                    a.iter().any(|g| {
                        g["group"] == info.group.as_str()
                            && g["version"] == info.version.as_str()
                            && g["kind"] == info.kind.as_str()
                    })
                })
        })
        .map(|(n, _)| n.clone())
}

/// Paths and operations of one resource (the GVK extension on each operation, and
/// `fieldValidation` on writes, which is how kubectl learns that the server validates fields).
fn resource_paths(flavor: Flavor, info: &ResourceInfo, def: &str) -> Vec<(String, Value)> {
    let base = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let collection = if info.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", info.plural)
    } else {
        format!("{base}/{}", info.plural)
    };
    let schema_ref = json!({"$ref": format!("{}{def}", flavor.ref_prefix())});
    let op = |action: &str, verb: &str, writes: bool| {
        let mut params = vec![query_param(flavor, "dryRun")];
        if writes {
            params.push(query_param(flavor, "fieldManager"));
            params.push(query_param(flavor, "fieldValidation"));
        }
        let response = match flavor {
            Flavor::V3 => {
                json!({"description": "OK", "content": {"application/json": {"schema": schema_ref}}})
            }
            Flavor::V2 => json!({"description": "OK", "schema": schema_ref}),
        };
        json!({
            "operationId": format!("{verb}{}", info.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
            "parameters": params,
            "responses": {"200": response},
        })
    };
    let mut out = Vec::new();
    if info.is_review() {
        out.push((collection, json!({"post": op("post", "create", true)})));
        return out;
    }
    out.push((
        collection.clone(),
        json!({"get": op("list", "list", false), "post": op("post", "create", true)}),
    ));
    out.push((
        format!("{collection}/{{name}}"),
        json!({
            "get": op("get", "read", false),
            "put": op("put", "replace", true),
            "patch": op("patch", "patch", true),
            "delete": op("delete", "delete", false),
        }),
    ));
    out
}

fn query_param(flavor: Flavor, name: &str) -> Value {
    match flavor {
        Flavor::V3 => {
            json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
        }
        Flavor::V2 => json!({"name": name, "in": "query", "type": "string", "uniqueItems": true}),
    }
}

/// The v3 document of one group/version (`None` if nothing is served there).
pub fn v3_group_version(
    catalog: &Catalog,
    crds: &[Value],
    group: &str,
    version: &str,
) -> Option<Value> {
    let infos: Vec<_> = catalog.in_group_version(group, version).collect();
    if infos.is_empty() {
        return None;
    }
    let defs = schemas(Flavor::V3, catalog, crds, group, version);
    let mut paths = BTreeMap::new();
    for info in infos {
        if let Some(def) = kind_definition(&defs, info) {
            paths.extend(resource_paths(Flavor::V3, info, &def));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::api::discovery::version()["gitVersion"]},
        "paths": paths,
        "components": {"schemas": defs},
    }))
}

/// The key of a group/version in the v3 root (`api/v1`, `apis/apps/v1`).
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The serialized per-group/version document and its hash (clients cache by URL, so a changed
/// document must get a new `hash=`).
pub fn v3_document_bytes(
    catalog: &Catalog,
    crds: &[Value],
    group: &str,
    version: &str,
) -> Option<(Vec<u8>, String)> {
    let doc = v3_group_version(catalog, crds, group, version)?;
    let bytes = serde_json::to_vec(&doc).ok()?;
    let hash = hex_upper(&Sha256::digest(&bytes));
    Some((bytes, hash))
}

/// `/openapi/v3`: where each group/version's document is.
pub fn v3_root(catalog: &Catalog, crds: &[Value]) -> Value {
    let mut paths = BTreeMap::new();
    for (group, versions) in catalog.groups() {
        for version in versions {
            // Built-in documents are the same for the process's life: hash them once.
            let hash = match builtin_hash(&group, &version) {
                Some(h) if !catalog.in_group_version(&group, &version).any(|r| r.custom) => {
                    Some(h.clone())
                }
                _ => v3_document_bytes(catalog, crds, &group, &version).map(|(_, h)| h),
            };
            if let Some(hash) = hash {
                let key = gv_key(&group, &version);
                paths.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
                );
            }
        }
    }
    json!({"paths": paths})
}

static BUILTIN_HASHES: LazyLock<BTreeMap<(String, String), String>> = LazyLock::new(|| {
    let catalog = crate::registry::Registry::new().catalog();
    let mut out = BTreeMap::new();
    for (group, versions) in catalog.groups() {
        for version in versions {
            if let Some((_, hash)) = v3_document_bytes(&catalog, &[], &group, &version) {
                out.insert((group.clone(), version), hash);
            }
        }
    }
    out
});

fn builtin_hash(group: &str, version: &str) -> Option<&'static String> {
    BUILTIN_HASHES.get(&(group.to_string(), version.to_string()))
}

/// `/openapi/v2` as JSON: every served kind in one Swagger 2.0 document.
pub fn v2(catalog: &Catalog, crds: &[Value]) -> Value {
    let mut definitions = Map::new();
    let mut paths = BTreeMap::new();
    for (group, versions) in catalog.groups() {
        for version in versions {
            let defs = schemas(Flavor::V2, catalog, crds, &group, &version);
            for info in catalog.in_group_version(&group, &version) {
                if let Some(def) = kind_definition(&defs, info) {
                    paths.extend(resource_paths(Flavor::V2, info, &def));
                }
            }
            definitions.extend(defs);
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::api::discovery::version()["gitVersion"]},
        "paths": paths,
        "definitions": definitions,
    })
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_kind_has_a_described_schema() {
        let catalog = crate::registry::Registry::new().catalog();
        for info in &catalog.resources {
            let defs = schemas(Flavor::V3, &catalog, &[], &info.group, &info.version);
            let def = kind_definition(&defs, info);
            let def = def.unwrap_or_else(|| panic!("no schema for {}", info.kind_group()));
            assert!(defs[&def]["description"].is_string(), "{def}");
        }
    }

    #[test]
    fn v3_refs_with_siblings_are_wrapped_in_all_of() {
        let defs = builtin_schemas(Flavor::V3, "apps", "v1");
        let spec = &defs["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
        assert_eq!(
            spec["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(spec["description"].is_string());
    }

    #[test]
    fn crd_definition_names_reverse_the_group() {
        assert_eq!(
            crd_definition_name("fission.io", "v1", "Function"),
            "io.fission.v1.Function"
        );
    }
}
