//! One module per Fission command group.

pub mod archive;
pub mod env;
pub mod function;
pub mod httptrigger;
pub mod misc;
pub mod mqtrigger;
pub mod package;
pub mod timer;
pub mod watch;

use kube::api::{DeleteParams, ListParams, ObjectList, PostParams};
use kube::core::ObjectMeta;

use crate::client::Ctx;
use crate::error::Result;
use crate::names;

/// Metadata of a new object in the working namespace, with `--labels` and `--annotation`.
pub(crate) fn meta(
    ctx_namespace: &str,
    name: &str,
    labels: Option<&str>,
    annotations: &[String],
) -> Result<ObjectMeta> {
    let labels = names::parse_labels(labels)?;
    let annotations = names::parse_annotations(annotations)?;
    Ok(ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ctx_namespace.to_owned()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    })
}

pub(crate) fn post() -> PostParams {
    PostParams::default()
}

/// Every object of kind `K` in the working namespace; `action` names the failure.
pub(crate) async fn list<K>(ctx: &Ctx, action: &str) -> Result<ObjectList<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    ctx.api::<K>()
        .list(&ListParams::default())
        .await
        .map_err(|e| ctx.error(action, e))
}

/// Deletes `name` of kind `K`; with `ignore_not_found`, a missing object is success. Returns
/// whether something was deleted.
pub(crate) async fn delete<K>(
    ctx: &Ctx,
    action: &str,
    name: &str,
    ignore_not_found: bool,
) -> Result<bool>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ctx.api::<K>().delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = ctx.error(action, e);
            if ignore_not_found && err.is_not_found() {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}
