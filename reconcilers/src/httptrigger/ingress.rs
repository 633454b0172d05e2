//! The Ingress of a trigger with `createingress: true` (pure builder), as Fission's router makes
//! it (reference/fission.md §4.7): in the router's namespace, named after the trigger, routing to
//! the router Service on port 80.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rivulet_api::HTTPTrigger;

/// Labels linking an Ingress to its trigger (Fission's).
pub const TRIGGER_NAME_LABEL: &str = "triggerName";
/// Namespace of the trigger (Ingresses live in the router's namespace).
pub const TRIGGER_NAMESPACE_LABEL: &str = "triggerNamespace";
/// Function routed to.
pub const FUNCTION_NAME_LABEL: &str = "functionName";

/// Where the router runs: `rivulet controller --router-namespace/--router-service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterService {
    /// Namespace of the router (and of the Ingresses).
    pub namespace: String,
    /// Name of the router Service (port 80).
    pub name: String,
}

/// Namespace of the router Service that `deploy/` installs (Fission's control-plane namespace).
pub const DEFAULT_ROUTER_NAMESPACE: &str = "fission";
/// Name of the router Service that `deploy/` installs (Fission's).
pub const DEFAULT_ROUTER_SERVICE: &str = "router";

impl Default for RouterService {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_ROUTER_NAMESPACE.into(),
            name: DEFAULT_ROUTER_SERVICE.into(),
        }
    }
}

/// Builds the trigger's Ingress. Host and path come from `ingressconfig` when both are set, else
/// from `host` and `relativeurl`/`prefix`; `*` or empty means any host.
pub fn build_ingress(trigger: &HTTPTrigger, router: &RouterService) -> Ingress {
    let spec = &trigger.spec;
    let config = spec.ingressconfig.clone().unwrap_or_default();
    let config_host = config.host.clone().unwrap_or_default();
    let config_path = config.path.clone().unwrap_or_default();
    let (host, path) = if !config_host.is_empty() && !config_path.is_empty() {
        (config_host, config_path)
    } else {
        let path = spec
            .effective_prefix()
            .map(str::to_owned)
            .or_else(|| spec.relativeurl.clone())
            .unwrap_or_else(|| "/".into());
        (spec.host.clone().unwrap_or_default(), path)
    };
    let host = (!host.is_empty() && host != "*").then_some(host);
    let labels: BTreeMap<String, String> = [
        (
            TRIGGER_NAME_LABEL,
            trigger.metadata.name.clone().unwrap_or_default(),
        ),
        (
            TRIGGER_NAMESPACE_LABEL,
            trigger.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            FUNCTION_NAME_LABEL,
            spec.functionref.name.clone().unwrap_or_default(),
        ),
        (
            rivulet_api::keys::rivulet::MANAGED_BY_LABEL,
            rivulet_api::keys::rivulet::MANAGED_BY_VALUE.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ingress {
        metadata: ObjectMeta {
            name: trigger.metadata.name.clone(),
            namespace: Some(router.namespace.clone()),
            labels: Some(labels),
            annotations: config.annotations.filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            rules: Some(vec![IngressRule {
                host: host.clone(),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(path),
                        path_type: "ImplementationSpecific".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: router.name.clone(),
                                port: Some(ServiceBackendPort {
                                    number: Some(80),
                                    name: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            tls: config.tls.filter(|t| !t.is_empty()).map(|secret| {
                vec![IngressTLS {
                    hosts: host.map(|h| vec![h]),
                    secret_name: Some(secret),
                }]
            }),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(spec: &serde_json::Value) -> HTTPTrigger {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "HTTPTrigger",
            "metadata": {"name": "hello", "namespace": "apps"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn ingress_from_ingressconfig_with_tls() {
        let t = trigger(&serde_json::json!({
            "relativeurl": "/hello", "methods": ["GET"], "functionref": {"type": "name", "name": "hello"},
            "createingress": true,
            "ingressconfig": {"host": "api.example.com", "path": "/hello(/|$)(.*)", "tls": "api-tls",
                              "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}}
        }));
        insta::assert_yaml_snapshot!(
            "ingress_config_tls",
            build_ingress(&t, &RouterService::default())
        );
    }

    #[test]
    fn ingress_falls_back_to_trigger_path_and_any_host() {
        let t = trigger(&serde_json::json!({
            "prefix": "/api", "functionref": {"type": "name", "name": "api"}, "createingress": true,
            "ingressconfig": {"host": "*", "path": ""}
        }));
        let ingress = build_ingress(&t, &RouterService::default());
        let rule = &ingress.spec.unwrap().rules.unwrap()[0];
        assert_eq!(rule.host, None);
        assert_eq!(
            rule.http.as_ref().unwrap().paths[0].path.as_deref(),
            Some("/api")
        );
    }
}
