//! Pure placement: which node a pending pod goes to, or why none fits, with kube-scheduler's
//! filters (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit) and a
//! least-allocated score (ties to the node name, so placement is deterministic).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::quantity;

/// What is already placed on a node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Pods bound to the node and not finished.
    pub pods: f64,
    /// Requested cpu in cores.
    pub cpu: f64,
    /// Requested memory in bytes.
    pub memory: f64,
}

impl Usage {
    /// Adds a pod's requests.
    pub fn add(&mut self, pod: &Pod) {
        let r = requests(pod);
        self.pods += 1.0;
        self.cpu += r.cpu;
        self.memory += r.memory;
    }
}

/// Why a pod fits no node: the kube-scheduler message, e.g.
/// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unschedulable {
    /// The message for the `PodScheduled` condition and the `FailedScheduling` event.
    pub message: String,
}

/// The requests of a pod (sum over containers, at least each init container, plus overhead).
pub fn requests(pod: &Pod) -> Usage {
    let Some(spec) = &pod.spec else {
        return Usage::default();
    };
    let get = |res: Option<&k8s_openapi::api::core::v1::ResourceRequirements>, key: &str| {
        res.and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(key))
            .and_then(|q| quantity::parse(&q.0))
            .unwrap_or(0.0)
    };
    let mut cpu: f64 = spec
        .containers
        .iter()
        .map(|c| get(c.resources.as_ref(), "cpu"))
        .sum();
    let mut memory: f64 = spec
        .containers
        .iter()
        .map(|c| get(c.resources.as_ref(), "memory"))
        .sum();
    for init in spec.init_containers.iter().flatten() {
        cpu = cpu.max(get(init.resources.as_ref(), "cpu"));
        memory = memory.max(get(init.resources.as_ref(), "memory"));
    }
    if let Some(overhead) = &spec.overhead {
        cpu += overhead
            .get("cpu")
            .and_then(|q| quantity::parse(&q.0))
            .unwrap_or(0.0);
        memory += overhead
            .get("memory")
            .and_then(|q| quantity::parse(&q.0))
            .unwrap_or(0.0);
    }
    Usage {
        pods: 1.0,
        cpu,
        memory,
    }
}

fn allocatable(node: &Node, key: &str) -> Option<f64> {
    let status = node.status.as_ref()?;
    status
        .allocatable
        .as_ref()
        .or(status.capacity.as_ref())?
        .get(key)
        .and_then(|q| quantity::parse(&q.0))
}

/// Picks a node for `pod` among `nodes` (each with what is already on it).
pub fn place(pod: &Pod, nodes: &[(&Node, Usage)]) -> Result<String, Unschedulable> {
    if nodes.is_empty() {
        return Err(Unschedulable {
            message: "no nodes available to schedule pods".into(),
        });
    }
    let want = requests(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(f64, &str)> = None;
    for (node, usage) in nodes {
        match filter(pod, node, *usage, want) {
            Err(why) => {
                for w in why {
                    *reasons.entry(w).or_default() += 1;
                }
            }
            Ok(score) => {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                if best.is_none_or(|(s, n)| score.total_cmp(&s).then_with(|| name.cmp(n)).is_lt()) {
                    best = Some((score, name));
                }
            }
        }
    }
    if let Some((_, name)) = best {
        return Ok(name.to_string());
    }
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    Err(Unschedulable {
        message: format!(
            "0/{} nodes are available: {}. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
            nodes.len(),
            parts.join(", "),
            nodes.len(),
            nodes.len()
        ),
    })
}

/// The score of a fitting node (lower is better), or the reasons it does not fit.
fn filter(pod: &Pod, node: &Node, usage: Usage, want: Usage) -> Result<f64, Vec<String>> {
    let spec = pod.spec.as_ref();
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
        && !tolerates_unschedulable(spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]))
    {
        return Err(vec!["node(s) were unschedulable".into()]);
    }
    let tolerations = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
    for taint in node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
    {
        if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
        {
            return Err(vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            )]);
        }
    }
    if !matches_node_selector_and_affinity(pod, node) {
        return Err(vec![
            "node(s) didn't match Pod's node affinity/selector".into(),
        ]);
    }
    let mut insufficient = Vec::new();
    let pods_cap = allocatable(node, "pods").unwrap_or(110.0);
    if usage.pods + 1.0 > pods_cap {
        insufficient.push("Too many pods".to_string());
    }
    let cpu_cap = allocatable(node, "cpu");
    if let Some(cap) = cpu_cap
        && want.cpu > 0.0
        && usage.cpu + want.cpu > cap + 1e-9
    {
        insufficient.push("Insufficient cpu".into());
    }
    let mem_cap = allocatable(node, "memory");
    if let Some(cap) = mem_cap
        && want.memory > 0.0
        && usage.memory + want.memory > cap
    {
        insufficient.push("Insufficient memory".into());
    }
    if !insufficient.is_empty() {
        return Err(insufficient);
    }
    let fraction = |used: f64, cap: Option<f64>| match cap {
        Some(c) if c > 0.0 => used / c,
        _ => 0.0,
    };
    Ok(fraction(usage.pods + 1.0, Some(pods_cap))
        + fraction(usage.cpu + want.cpu, cpu_cap)
        + fraction(usage.memory + want.memory, mem_cap))
}

fn tolerates_unschedulable(tolerations: &[Toleration]) -> bool {
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    tolerations.iter().any(|t| tolerates(t, &taint))
}

/// Whether `toleration` tolerates `taint` (upstream `Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// nodeSelector and required node affinity (terms ORed, expressions ANDed).
pub fn matches_node_selector_and_affinity(pod: &Pod, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let Some(spec) = &pod.spec else { return true };
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(selector) => selector.node_selector_terms.iter().any(|term| {
            term_matches(
                term,
                labels,
                node.metadata.name.as_deref().unwrap_or_default(),
            )
        }),
    }
}

/// One node selector term: every expression and field must match; an empty term matches nothing.
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(name)))
}

/// One requirement against the value of its key (`None` when the label is absent).
pub fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let as_int = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(as_int),
                values.first().and_then(|b| as_int(b)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"}}
        }))
        .unwrap()
    }

    fn pod(spec: serde_json::Value) -> Pod {
        let mut s = json!({"containers": [{"name": "c", "image": "i"}]});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": s})).unwrap()
    }

    fn nodes() -> Vec<Node> {
        vec![
            node("a", json!({"zone": "north", "gen": "3"}), json!([])),
            node("b", json!({"zone": "south", "gen": "5"}), json!([])),
            node(
                "v",
                json!({"liqo.io/type": "virtual-node"}),
                json!([{"key": "virtual-node.liqo.io/not-allowed", "value": "true", "effect": "NoExecute"}]),
            ),
        ]
    }

    fn run(p: &Pod) -> Result<String, Unschedulable> {
        let n = nodes();
        let views: Vec<(&Node, Usage)> = n.iter().map(|n| (n, Usage::default())).collect();
        place(p, &views)
    }

    fn affinity(op: &str, key: &str, values: &[&str]) -> Pod {
        pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]}}}}),
        )
    }

    #[test]
    fn node_selector_and_each_affinity_operator() {
        assert_eq!(
            run(&pod(json!({"nodeSelector": {"zone": "south"}}))).unwrap(),
            "b"
        );
        assert_eq!(run(&affinity("In", "zone", &["north"])).unwrap(), "a");
        assert_eq!(run(&affinity("NotIn", "zone", &["north"])).unwrap(), "b");
        assert_eq!(run(&affinity("Exists", "gen", &[])).unwrap(), "a");
        assert_eq!(run(&affinity("Gt", "gen", &["4"])).unwrap(), "b");
        assert_eq!(run(&affinity("Lt", "gen", &["4"])).unwrap(), "a");
        // DoesNotExist on zone: only the tainted virtual node lacks it.
        let err = run(&affinity("DoesNotExist", "zone", &[])).unwrap_err();
        assert_eq!(
            err.message,
            "0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {virtual-node.liqo.io/not-allowed: true}. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn toleration_admits_the_virtual_node() {
        let mut p = affinity("DoesNotExist", "zone", &[]);
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("virtual-node.liqo.io/not-allowed".into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Toleration::default()
        }]);
        assert_eq!(run(&p).unwrap(), "v");
        // A toleration for another effect does not help.
        p.spec.as_mut().unwrap().tolerations.as_mut().unwrap()[0].effect =
            Some("NoSchedule".into());
        assert!(run(&p).is_err());
    }

    #[test]
    fn resources_and_pod_count_and_least_loaded() {
        let n = nodes();
        let p = pod(json!({}));
        let busy = Usage {
            pods: 2.0,
            cpu: 0.0,
            memory: 0.0,
        };
        let views = vec![(&n[0], busy), (&n[1], Usage::default())];
        assert_eq!(place(&p, &views).unwrap(), "b");
        let full = Usage {
            pods: 3.0,
            cpu: 0.0,
            memory: 0.0,
        };
        let views = vec![(&n[0], full), (&n[1], full)];
        assert!(
            place(&p, &views)
                .unwrap_err()
                .message
                .contains("2 Too many pods")
        );
        let big = pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2500m", "memory": "5Gi"}}}]}),
        );
        let err = run(&big).unwrap_err().message;
        assert!(
            err.contains("2 Insufficient cpu") && err.contains("2 Insufficient memory"),
            "{err}"
        );
        // Ties go to the lower name.
        assert_eq!(run(&p).unwrap(), "a");
    }

    #[test]
    fn no_nodes() {
        assert_eq!(
            place(&pod(json!({})), &[]).unwrap_err().message,
            "no nodes available to schedule pods"
        );
    }
}
