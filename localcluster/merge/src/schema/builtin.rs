//! Merge rules of built-in kinds, transcribed from the `patchStrategy`/`patchMergeKey`,
//! `listType`/`listMapKey` and `mapType`/`structType` tags of k8s.io/api v0.32.
//!
//! Only non-default rules are listed: a list not mentioned is atomic and a map not mentioned is
//! granular, which is also what upstream does for untagged fields.

use std::sync::LazyLock;

use serde_json::Value;

use super::types::{ListMapKey, ListType, MapType, MergeSchema, Seg};

/// A non-default merge rule.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// `listType=set` / `patchStrategy=merge` on a list of scalars.
    Set,
    /// `listType=map` with these keys, each with an optional string default.
    Keys(&'static [(&'static str, Option<&'static str>)]),
    /// `mapType=atomic` / `structType=atomic`.
    AtomicMap,
}

type Rules = &'static [(&'static str, Rule)];

const BY_NAME: Rule = Rule::Keys(&[("name", None)]);
const BY_TYPE: Rule = Rule::Keys(&[("type", None)]);
const BY_IP: Rule = Rule::Keys(&[("ip", None)]);

const OBJECT_META: Rules = &[
    ("finalizers", Rule::Set),
    ("ownerReferences", Rule::Keys(&[("uid", None)])),
];

const CONTAINER: Rules = &[
    (
        "ports",
        Rule::Keys(&[("containerPort", None), ("protocol", Some("TCP"))]),
    ),
    ("env", BY_NAME),
    ("volumeMounts", Rule::Keys(&[("mountPath", None)])),
    ("volumeDevices", Rule::Keys(&[("devicePath", None)])),
    ("resources.claims", BY_NAME),
];

const POD_SPEC: Rules = &[
    ("volumes", BY_NAME),
    ("initContainers", BY_NAME),
    ("containers", BY_NAME),
    ("ephemeralContainers", BY_NAME),
    ("imagePullSecrets", BY_NAME),
    ("hostAliases", BY_IP),
    (
        "topologySpreadConstraints",
        Rule::Keys(&[("topologyKey", None), ("whenUnsatisfiable", None)]),
    ),
    ("schedulingGates", BY_NAME),
    ("resourceClaims", BY_NAME),
    ("nodeSelector", Rule::AtomicMap),
];

const POD_STATUS: Rules = &[
    ("conditions", BY_TYPE),
    ("podIPs", BY_IP),
    ("hostIPs", BY_IP),
];
const CONDITIONS: Rules = &[("conditions", BY_TYPE)];
const SELECTOR: Rules = &[("selector", Rule::AtomicMap)];
const SERVICE_SPEC: Rules = &[
    (
        "ports",
        Rule::Keys(&[("port", None), ("protocol", Some("TCP"))]),
    ),
    ("selector", Rule::AtomicMap),
];
const NODE_SPEC: Rules = &[("podCIDRs", Rule::Set)];
const NODE_STATUS: Rules = &[("conditions", BY_TYPE), ("addresses", BY_TYPE)];
const SERVICE_ACCOUNT: Rules = &[("secrets", BY_NAME)];

/// Where a group of rules applies within an object.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// `rules` relative to this dotted prefix (`""` is the root; `x[]` means the items of `x`).
    At(&'static str, Rules),
    /// A `PodTemplateSpec` (or the Pod itself, with prefix `""`).
    PodTemplate(&'static str),
}

const WORKLOAD: &[Part] = &[
    Part::PodTemplate("spec.template"),
    Part::At("spec", SELECTOR),
    Part::At("status", CONDITIONS),
];

/// (group, kind) → parts. ObjectMeta rules at `metadata` are added to every kind.
const KINDS: &[(&str, &str, &[Part])] = &[
    (
        "",
        "Pod",
        &[Part::PodTemplate(""), Part::At("status", POD_STATUS)],
    ),
    ("", "PodTemplate", &[Part::PodTemplate("template")]),
    (
        "",
        "ReplicationController",
        &[
            Part::PodTemplate("spec.template"),
            Part::At("status", CONDITIONS),
        ],
    ),
    (
        "",
        "Service",
        &[
            Part::At("spec", SERVICE_SPEC),
            Part::At("status", CONDITIONS),
        ],
    ),
    ("", "Endpoints", &[]),
    ("", "ConfigMap", &[]),
    ("", "Secret", &[]),
    ("", "ServiceAccount", &[Part::At("", SERVICE_ACCOUNT)]),
    (
        "",
        "Node",
        &[Part::At("spec", NODE_SPEC), Part::At("status", NODE_STATUS)],
    ),
    ("", "Namespace", &[Part::At("status", CONDITIONS)]),
    ("", "Event", &[]),
    ("events.k8s.io", "Event", &[]),
    ("apps", "Deployment", WORKLOAD),
    ("apps", "ReplicaSet", WORKLOAD),
    ("apps", "StatefulSet", WORKLOAD),
    ("apps", "DaemonSet", WORKLOAD),
    ("batch", "Job", WORKLOAD),
    (
        "batch",
        "CronJob",
        &[
            Part::PodTemplate("spec.jobTemplate.spec.template"),
            Part::At("spec.jobTemplate.spec", SELECTOR),
        ],
    ),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        &[Part::At("status", CONDITIONS)],
    ),
    (
        "policy",
        "PodDisruptionBudget",
        &[Part::At("spec", SELECTOR), Part::At("status", CONDITIONS)],
    ),
    ("networking.k8s.io", "Ingress", &[]),
    ("discovery.k8s.io", "EndpointSlice", &[]),
    ("coordination.k8s.io", "Lease", &[]),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &[Part::At("status", CONDITIONS)],
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleSeg {
    Field(&'static str),
    Item,
}

#[derive(Debug)]
struct Compiled {
    path: Vec<RuleSeg>,
    rule: Rule,
}

fn push_dotted(out: &mut Vec<RuleSeg>, dotted: &'static str) {
    for piece in dotted.split('.').filter(|p| !p.is_empty()) {
        match piece.strip_suffix("[]") {
            Some(name) => {
                out.push(RuleSeg::Field(name));
                out.push(RuleSeg::Item);
            }
            None => out.push(RuleSeg::Field(piece)),
        }
    }
}

fn compile_rules(out: &mut Vec<Compiled>, prefix: &[RuleSeg], rules: Rules) {
    for (dotted, rule) in rules {
        let mut path = prefix.to_vec();
        push_dotted(&mut path, dotted);
        out.push(Compiled { path, rule: *rule });
    }
}

fn compile_parts(parts: &[Part]) -> Vec<Compiled> {
    let mut out = Vec::new();
    compile_rules(&mut out, &[RuleSeg::Field("metadata")], OBJECT_META);
    for part in parts {
        match part {
            Part::At(prefix, rules) => {
                let mut p = Vec::new();
                push_dotted(&mut p, prefix);
                compile_rules(&mut out, &p, rules);
            }
            Part::PodTemplate(prefix) => {
                let mut base = Vec::new();
                push_dotted(&mut base, prefix);
                for (sub, rules) in [
                    ("metadata", OBJECT_META),
                    ("spec", POD_SPEC),
                    ("spec.initContainers[]", CONTAINER),
                    ("spec.containers[]", CONTAINER),
                    ("spec.ephemeralContainers[]", CONTAINER),
                ] {
                    let mut p = base.clone();
                    push_dotted(&mut p, sub);
                    compile_rules(&mut out, &p, rules);
                }
            }
        }
    }
    out
}

/// Compiled rules per kind, in `KINDS` order (a linear scan over ~25 kinds is cheap).
static TABLE: LazyLock<Vec<Vec<Compiled>>> = LazyLock::new(|| {
    KINDS
        .iter()
        .map(|(_, _, parts)| compile_parts(parts))
        .collect()
});

fn kind_index(group: &str, kind: &str) -> Option<usize> {
    KINDS.iter().position(|(g, k, _)| *g == group && *k == kind)
}

static META_ONLY: LazyLock<Vec<Compiled>> = LazyLock::new(|| compile_parts(&[]));

/// Merge rules for a built-in kind (see the module docs for the list). Kinds not in the table
/// get the ObjectMeta rules only (finalizers as a set, ownerReferences keyed by `uid`) and
/// unstructured defaults elsewhere — which is also right for the `metadata` of custom resources.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinSchema {
    rules: &'static [Compiled],
}

impl BuiltinSchema {
    /// Rules for `kind` in API `group` (`""` for core). Unknown kinds get ObjectMeta rules only.
    pub fn for_kind(group: &str, kind: &str) -> Self {
        let rules = kind_index(group, kind)
            .and_then(|i| TABLE.get(i))
            .unwrap_or(&META_ONLY);
        Self { rules }
    }

    /// Rules shared by every kind: ObjectMeta at `metadata`, defaults elsewhere.
    pub fn object_meta_only() -> Self {
        Self { rules: &META_ONLY }
    }

    /// True when (`group`, `kind`) is in the built-in table.
    pub fn knows(group: &str, kind: &str) -> bool {
        kind_index(group, kind).is_some()
    }

    fn find(&self, path: &[Seg<'_>]) -> Option<Rule> {
        self.rules
            .iter()
            .find(|c| {
                c.path.len() == path.len()
                    && c.path.iter().zip(path).all(|(r, s)| match (r, s) {
                        (RuleSeg::Field(a), Seg::Field(b)) => a == b,
                        (RuleSeg::Item, Seg::Item) => true,
                        _ => false,
                    })
            })
            .map(|c| c.rule)
    }
}

impl MergeSchema for BuiltinSchema {
    fn list_type(&self, path: &[Seg<'_>]) -> ListType {
        match self.find(path) {
            Some(Rule::Set) => ListType::Set,
            Some(Rule::Keys(keys)) => ListType::Map(
                keys.iter()
                    .map(|(name, default)| ListMapKey {
                        name: (*name).to_owned(),
                        default: default.map(|d| Value::String(d.to_owned())),
                    })
                    .collect(),
            ),
            Some(Rule::AtomicMap) | None => ListType::Atomic,
        }
    }

    fn map_type(&self, path: &[Seg<'_>]) -> MapType {
        match self.find(path) {
            Some(Rule::AtomicMap) => MapType::Atomic,
            _ => MapType::Granular,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Seg::{Field as F, Item};

    fn key_names(t: &ListType) -> Vec<String> {
        match t {
            ListType::Map(keys) => keys.iter().map(|k| k.name.clone()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn pod_rules() {
        let s = BuiltinSchema::for_kind("", "Pod");
        assert_eq!(
            key_names(&s.list_type(&[F("spec"), F("containers")])),
            ["name"]
        );
        assert_eq!(
            key_names(&s.list_type(&[F("spec"), F("containers"), Item, F("ports")])),
            ["containerPort", "protocol"]
        );
        assert_eq!(
            key_names(&s.list_type(&[F("spec"), F("initContainers"), Item, F("env")])),
            ["name"]
        );
        assert_eq!(
            s.list_type(&[F("spec"), F("tolerations")]),
            ListType::Atomic
        );
        assert_eq!(
            s.list_type(&[F("metadata"), F("finalizers")]),
            ListType::Set
        );
        assert_eq!(s.map_type(&[F("spec"), F("nodeSelector")]), MapType::Atomic);
        assert_eq!(s.map_type(&[F("metadata"), F("labels")]), MapType::Granular);
        assert_eq!(
            key_names(&s.list_type(&[F("status"), F("conditions")])),
            ["type"]
        );
    }

    #[test]
    fn deployment_template_and_selector() {
        let s = BuiltinSchema::for_kind("apps", "Deployment");
        let containers = [F("spec"), F("template"), F("spec"), F("containers")];
        assert_eq!(key_names(&s.list_type(&containers)), ["name"]);
        assert_eq!(
            key_names(&s.list_type(&[
                F("spec"),
                F("template"),
                F("spec"),
                F("containers"),
                Item,
                F("volumeMounts")
            ])),
            ["mountPath"]
        );
        assert_eq!(s.map_type(&[F("spec"), F("selector")]), MapType::Atomic);
        assert_eq!(
            s.list_type(&[F("spec"), F("template"), F("metadata"), F("finalizers")]),
            ListType::Set
        );
        // The Pod's own paths do not apply at the Deployment root.
        assert_eq!(s.list_type(&[F("spec"), F("containers")]), ListType::Atomic);
    }

    #[test]
    fn unknown_kind_gets_object_meta_only() {
        let s = BuiltinSchema::for_kind("example.com", "Widget");
        assert!(!BuiltinSchema::knows("example.com", "Widget"));
        assert!(BuiltinSchema::knows("", "ConfigMap"));
        assert_eq!(
            key_names(&s.list_type(&[F("metadata"), F("ownerReferences")])),
            ["uid"]
        );
        assert_eq!(s.list_type(&[F("spec"), F("items")]), ListType::Atomic);
        let svc = BuiltinSchema::for_kind("", "Service");
        assert_eq!(
            key_names(&svc.list_type(&[F("spec"), F("ports")])),
            ["port", "protocol"]
        );
    }
}
