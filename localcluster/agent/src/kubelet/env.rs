//! Container environment: `env` (with `valueFrom`) and `envFrom` resolved as the kubelet does,
//! and `$(VAR)` expansion of env values, command and args.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// ConfigMap and Secret data a pod refers to, by name (`None`: the object does not exist).
#[derive(Clone, Debug, Default)]
pub struct RefData {
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    pub secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

/// Names of the ConfigMaps and Secrets the containers' environment refers to.
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for c in pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    }) {
        for e in c.env.iter().flatten() {
            if let Some(from) = &e.value_from {
                if let Some(r) = &from.config_map_key_ref {
                    cms.push(r.name.clone());
                }
                if let Some(r) = &from.secret_key_ref {
                    secrets.push(r.name.clone());
                }
            }
        }
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &from.secret_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// `$(VAR)` expansion (upstream `third_party/forked/golang/expansion`): defined variables are
/// replaced, `$$` is a literal `$`, anything else is kept as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The value of a downward-API `fieldPath` of the pod.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let quoted = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(key) = quoted("metadata.labels['") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = quoted("metadata.annotations['") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_lines(meta.labels.as_ref()),
        "metadata.annotations" => map_lines(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => "127.0.0.1".into(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.podIPs" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        other => return Err(format!("unsupported fieldPath {other:?}")),
    })
}

fn map_lines(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// The container's environment, in order (later entries win), or the kubelet's
/// `CreateContainerConfigError` message.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    base: &BTreeMap<String, String>,
    refs: &RefData,
) -> Result<BTreeMap<String, String>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars = base.clone();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, kind, name, optional) = if let Some(r) = &from.config_map_ref {
            (
                refs.config_maps.get(&r.name).cloned().flatten(),
                "configmap",
                &r.name,
                r.optional,
            )
        } else if let Some(r) = &from.secret_ref {
            (
                refs.secrets.get(&r.name).cloned().flatten(),
                "secret",
                &r.name,
                r.optional,
            )
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    vars.insert(format!("{prefix}{k}"), v);
                }
            }
            None if optional == Some(true) => {}
            None => return Err(format!("{kind} \"{name}\" not found")),
        }
    }
    for e in container.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                Some(field_value(pod, &f.field_path)?)
            } else if let Some(r) = &from.config_map_key_ref {
                lookup(
                    refs.config_maps.get(&r.name),
                    "configmap",
                    "ConfigMap",
                    &ns,
                    &r.name,
                    &r.key,
                    r.optional,
                )?
            } else if let Some(r) = &from.secret_key_ref {
                lookup(
                    refs.secrets.get(&r.name),
                    "secret",
                    "Secret",
                    &ns,
                    &r.name,
                    &r.key,
                    r.optional,
                )?
            } else {
                from.resource_field_ref
                    .as_ref()
                    .map(|r| resource_value(container, &r.resource))
            }
        } else {
            Some(expand(e.value.as_deref().unwrap_or_default(), &vars))
        };
        if let Some(v) = value {
            vars.insert(e.name.clone(), v);
        }
    }
    Ok(vars)
}

fn lookup(
    data: Option<&Option<BTreeMap<String, String>>>,
    kind: &str,
    kind_title: &str,
    ns: &str,
    name: &str,
    key: &str,
    optional: Option<bool>,
) -> Result<Option<String>, String> {
    let optional = optional == Some(true);
    match data.and_then(Option::as_ref) {
        None if optional => Ok(None),
        None => Err(format!("{kind} \"{name}\" not found")),
        Some(d) => match d.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {key} in {kind_title} {ns}/{name}"
            )),
        },
    }
}

fn resource_value(container: &Container, resource: &str) -> String {
    let (kind, name) = resource.split_once('.').unwrap_or(("limits", resource));
    let res = container.resources.as_ref();
    let map = if kind == "requests" {
        res.and_then(|r| r.requests.as_ref())
    } else {
        res.and_then(|r| r.limits.as_ref())
    };
    map.and_then(|m| m.get(name))
        .map_or_else(|| "0".into(), |q| q.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$A-$(", &vars), "x-$(B)-$(A)-$A-$(");
    }

    #[test]
    fn resolves_value_from_and_env_from() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}},
                    {"name": "BOTH", "value": "$(POD)@$(NODE_NAME)"},
                ]}]}
        }))
        .unwrap();
        let refs = RefData {
            config_maps: BTreeMap::from([(
                "cm".into(),
                Some(BTreeMap::from([("x".into(), "1".into())])),
            )]),
            secrets: BTreeMap::from([
                (
                    "s".into(),
                    Some(BTreeMap::from([("k".into(), "pw".into())])),
                ),
                ("gone".into(), None),
            ]),
        };
        let base = BTreeMap::from([("NODE_NAME".to_string(), "n1".to_string())]);
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let env = resolve(&pod, c, &base, &refs).unwrap();
        assert_eq!(env["CM_x"], "1");
        assert_eq!(env["POD"], "p");
        assert_eq!(env["APP"], "web");
        assert_eq!(env["PASS"], "pw");
        assert!(!env.contains_key("OPT"));
        assert_eq!(env["BOTH"], "p@n1");
        let missing = RefData {
            secrets: BTreeMap::from([("s".into(), Some(BTreeMap::new()))]),
            ..refs
        };
        assert_eq!(
            resolve(&pod, c, &base, &missing).unwrap_err(),
            "couldn't find key k in Secret ns/s"
        );
    }
}
