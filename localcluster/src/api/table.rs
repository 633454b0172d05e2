//! `meta.k8s.io/v1 Table` responses for `kubectl get` (reference/apiserver.md §1.4), rendered
//! by `rivulet-kube-schema` from each resource's printer columns.

use serde_json::Value;

pub use rivulet_kube_schema::IncludeObject as Include;

use crate::resources::ResourceInfo;
use crate::util;

/// `includeObject` query parameter.
pub fn include(v: Option<&str>) -> Include {
    match v {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    }
}

/// A Table of `objects` with list metadata.
pub fn table(info: &ResourceInfo, objects: &[Value], list_meta: &Value, include: Include) -> Value {
    let mut t = rivulet_kube_schema::table(&info.columns, objects, util::unix_now(), include);
    t["metadata"] = list_meta.clone();
    t
}
