//! Reads: get and list (with pagination, resourceVersion semantics and selectors).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use crate::api::status::{ApiError, ApiResult};
use crate::api::{Ctx, Query, view_json, view_value};
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::Stored;

/// How long a read waits for a resourceVersion newer than the store's (AS `blockTimeout`).
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);

/// Parsed selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn parse(info: &ResourceInfo, namespace: Option<&str>, q: &Query) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            q.get("fieldSelector").unwrap_or_default(),
            &info.selectable_fields,
        )
        .map_err(ApiError::bad_request)?;
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        })
    }

    /// Whether a stored object matches (its storage-form value; field paths of events.k8s.io
    /// views are translated by the resource's selectable fields).
    pub fn matches(&self, info: &ResourceInfo, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        if !self.labels.is_empty() && !self.labels.matches(&obj["metadata"]["labels"]) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        if info.group == "events.k8s.io" {
            return self.fields.matches(&crate::api::events::from_core(obj));
        }
        self.fields.matches(obj)
    }
}

/// Wait (briefly) until the store has reached `rv`; 504 if it does not.
pub async fn wait_for_rv(ctx: &Ctx, rv: u64) -> ApiResult<()> {
    if ctx.store.current_rv() >= rv {
        return Ok(());
    }
    if tokio::time::timeout(TOO_LARGE_WAIT, ctx.store.wait_durable(rv))
        .await
        .is_ok()
    {
        return Ok(());
    }
    Err(ApiError::new(
        504,
        "Timeout",
        format!(
            "Timeout: Too large resource version: {rv}, current: {}",
            ctx.store.current_rv()
        ),
    )
    .with_cause("ResourceVersionTooLarge", "Too large resource version", ""))
}

fn parse_rv(s: &str) -> ApiResult<u64> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version {s:?}")))
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = json!({"rv": rv, "ns": ns, "n": name}).to_string();
    crate::util::hex(raw.as_bytes())
}

fn decode_continue(token: &str) -> ApiResult<(u64, (String, String))> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let v: Value = serde_json::from_slice(&bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    Ok((
        rv,
        (
            v["ns"].as_str().unwrap_or_default().into(),
            v["n"].as_str().unwrap_or_default().into(),
        ),
    ))
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Arc<Stored>>,
    pub rv: u64,
    pub continue_token: Option<String>,
}

/// Resolve the list's snapshot and collect one page of matching objects.
pub async fn list_page(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: Option<&str>,
    q: &Query,
) -> ApiResult<Page> {
    let filter = Filter::parse(info, namespace, q)?;
    let limit: usize = match q.get("limit") {
        None => 0,
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
    };
    let rv = q.get("resourceVersion");
    let rvm = q.get("resourceVersionMatch");
    let cont = q.get("continue");
    if q.flag("sendInitialEvents") {
        return Err(ApiError::invalid("ListOptions", "", Vec::new()).with_cause(
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents is forbidden for list",
            "sendInitialEvents",
        ));
    }
    if rvm.is_some() && rv.is_none() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if rvm.is_some() && cont.is_some() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if !matches!(rvm, None | Some("Exact" | "NotOlderThan")) {
        return Err(ApiError::bad_request(format!(
            "unsupported resourceVersionMatch {:?}",
            rvm.unwrap_or_default()
        )));
    }
    let (at, after) = if let Some(token) = cont {
        let (rv, key) = decode_continue(token)?;
        (Some(rv), Some(key))
    } else {
        match rv {
            None | Some("0") => {
                if rvm == Some("Exact") {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
                (None, None)
            }
            Some(s) => {
                let n = parse_rv(s)?;
                wait_for_rv(ctx, n).await?;
                let exact = rvm == Some("Exact") || (rvm.is_none() && limit > 0);
                (exact.then_some(n), None)
            }
        }
    };
    let (all, snapshot) = ctx.store.list(&info.storage, filter.namespace.as_deref(), at, after.as_ref()).map_err(|e| {
        if cont.is_some() {
            ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.")
        } else {
            ApiError::expired(format!("too old resource version: {} ({})", at.unwrap_or(0), e.oldest))
        }
    })?;
    let mut items = Vec::new();
    let mut continue_token = None;
    for stored in all {
        if !filter.matches(info, &stored.value) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            let last: &Arc<Stored> = &items[items.len() - 1];
            continue_token = Some(encode_continue(
                snapshot,
                last.value["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default(),
                last.value["metadata"]["name"].as_str().unwrap_or_default(),
            ));
            break;
        }
        items.push(stored);
    }
    ctx.store.wait_durable(snapshot).await;
    Ok(Page {
        items,
        rv: snapshot,
        continue_token,
    })
}

fn list_meta(page: &Page) -> Value {
    let mut m = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        m["continue"] = json!(c);
    }
    m
}

/// Plain JSON list body, built from the stored bytes without re-serializing each object.
pub fn list_json(info: &ResourceInfo, page: &Page) -> Bytes {
    let size: usize = page.items.iter().map(|s| s.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 256);
    let head = json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": list_meta(page)}).to_string();
    out.put_slice(&head.as_bytes()[..head.len() - 1]);
    out.put_slice(b",\"items\":[");
    for (i, s) in page.items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&view_json(info, s));
    }
    out.put_slice(b"]}");
    out.freeze()
}

pub fn list_table(info: &ResourceInfo, page: &Page, include: crate::api::table::Include) -> Value {
    let objects: Vec<Value> = page.items.iter().map(|s| view_value(info, s)).collect();
    crate::api::table::table(info, &objects, &list_meta(page), include)
}

pub fn list_partial(info: &ResourceInfo, page: &Page) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta(page),
        "items": page.items.iter().map(|s| partial_metadata(&view_value(info, s))).collect::<Vec<_>>(),
    })
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// Get one object (durable state only).
pub async fn get(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
) -> ApiResult<Arc<Stored>> {
    let key = Ctx::key(info, namespace, name);
    let Some(stored) = ctx.store.get(&key) else {
        // A delete is visible only once durable, like any other write.
        ctx.store.wait_durable(ctx.store.current_rv()).await;
        return Err(
            ApiError::not_found(&info.group_resource(), name).with_target(&info.group, &info.kind)
        );
    };
    ctx.store.wait_durable(stored.rv).await;
    Ok(stored)
}
