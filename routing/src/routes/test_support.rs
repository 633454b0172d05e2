//! Builders for HTTPTrigger and Function fixtures in route tests.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use rivulet_api::{Function, FunctionReference, HTTPTrigger, HTTPTriggerSpec};

pub(crate) struct TriggerBuilder(HTTPTrigger);

/// A trigger named `name` in `default`, created `age` seconds after the epoch, pointing at a
/// function named `fn-<name>`.
pub(crate) fn trigger(name: &str, created: i64) -> TriggerBuilder {
    TriggerBuilder(HTTPTrigger {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            creation_timestamp: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
            )),
            ..ObjectMeta::default()
        },
        spec: HTTPTriggerSpec {
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some(format!("fn-{name}")),
                functionweights: None,
            },
            ..HTTPTriggerSpec::default()
        },
        status: None,
    })
}

impl TriggerBuilder {
    pub(crate) fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }
    pub(crate) fn url(mut self, url: &str) -> Self {
        self.0.spec.relativeurl = Some(url.into());
        self
    }
    pub(crate) fn prefix(mut self, prefix: &str) -> Self {
        self.0.spec.prefix = Some(prefix.into());
        self
    }
    pub(crate) fn keep_prefix(mut self) -> Self {
        self.0.spec.keep_prefix = Some(true);
        self
    }
    pub(crate) fn methods(mut self, methods: &[&str]) -> Self {
        self.0.spec.methods = Some(methods.iter().map(|m| (*m).to_owned()).collect());
        self
    }
    pub(crate) fn method(mut self, method: &str) -> Self {
        self.0.spec.method = Some(method.into());
        self
    }
    pub(crate) fn host(mut self, host: &str) -> Self {
        self.0.spec.host = Some(host.into());
        self
    }
    pub(crate) fn function(mut self, name: &str) -> Self {
        self.0.spec.functionref.name = Some(name.into());
        self
    }
    pub(crate) fn weights(mut self, weights: &[(&str, i32)]) -> Self {
        self.0.spec.functionref = FunctionReference {
            reference_type: "function-weights".into(),
            name: None,
            functionweights: Some(
                weights
                    .iter()
                    .map(|(n, w)| ((*n).to_owned(), *w))
                    .collect::<BTreeMap<_, _>>(),
            ),
        };
        self
    }
    pub(crate) fn build(self) -> HTTPTrigger {
        self.0
    }
}

/// A function `name` in `namespace` with uid `uid-<name>` and resourceVersion `7`.
pub(crate) fn function(namespace: &str, name: &str) -> Function {
    Function {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        },
        spec: rivulet_api::FunctionSpec::default(),
        status: None,
    }
}
