//! Types shared by several kinds.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to another object by namespace and name (Fission's `EnvironmentReference`,
/// `SecretReference`, `ConfigMapReference`). An empty namespace means the referrer's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct ObjectRef {
    /// Namespace of the referenced object; empty means the namespace of the referring object.
    #[serde(default)]
    pub namespace: String,
    /// Name of the referenced object (a DNS-1123 label).
    #[serde(default)]
    pub name: String,
}

/// A reference to a Secret or ConfigMap mounted into the function's pods. Fission requires it to
/// live in the function's own namespace.
pub type SecretOrConfigMapRef = ObjectRef;

/// How a trigger names the function(s) it invokes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct FunctionReference {
    /// `name` (one function, given by `name`) or `function-weights` (weighted split over
    /// `functionweights`, used by canary deployments).
    #[serde(rename = "type", default)]
    #[schemars(extend("enum" = ["name", "function-weights"]))]
    pub reference_type: String,
    /// Name of the function when `type` is `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Function name → percentage of requests, when `type` is `function-weights`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functionweights: Option<BTreeMap<String, i32>>,
}

/// The two values of [`FunctionReference::reference_type`].
pub mod function_reference_type {
    /// Route to one function by name.
    pub const NAME: &str = "name";
    /// Route to several functions by weight.
    pub const FUNCTION_WEIGHTS: &str = "function-weights";
}

/// Rivulet's additive status: the generation last reconciled and standard conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionedStatus {
    /// `metadata.generation` of the spec that `conditions` describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions, keyed by `type` (`Ready` at least).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}

impl ConditionedStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
