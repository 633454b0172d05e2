//! Watches: newline-delimited JSON events, bookmarks, streaming lists, in-stream 410
//! (reference/apiserver.md §2.3, §2.4).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::api::read::Filter;
use crate::api::status::{ApiError, ApiResult};
use crate::api::{Ctx, Query, same_view, view_json};
use crate::resources::ResourceInfo;
use crate::storage::{Event, EventType, Stored};

/// Default watch length when the client gives none (upstream picks 1800–3600 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(30);

/// Where a watch starts.
#[derive(Debug)]
enum Start {
    /// Synthetic ADDED events for the current state (optionally closed by the initial-events-end
    /// bookmark), then changes.
    State { initial_end_bookmark: bool },
    /// Every change after this version.
    From(u64),
}

/// A validated watch request.
#[derive(Debug)]
pub struct WatchSpec {
    filter: Filter,
    start: Start,
    bookmarks: bool,
    timeout: Duration,
}

impl WatchSpec {
    pub fn parse(info: &ResourceInfo, namespace: Option<&str>, q: &Query) -> ApiResult<WatchSpec> {
        let filter = Filter::parse(info, namespace, q)?;
        let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
        let rvm = q.get("resourceVersionMatch");
        let rv = q.get("resourceVersion");
        if send_initial.is_some() && rvm != Some("NotOlderThan") {
            return Err(ApiError::invalid("ListOptions", "", Vec::new()).with_cause(
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
                "resourceVersionMatch",
            ));
        }
        if send_initial.is_none() && rvm.is_some() {
            return Err(ApiError::invalid("ListOptions", "", Vec::new()).with_cause(
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                "resourceVersionMatch",
            ));
        }
        let bookmarks = q.flag("allowWatchBookmarks");
        let start =
            match (send_initial, rv) {
                (Some(true), _) => Start::State {
                    initial_end_bookmark: true,
                },
                (_, None | Some("0")) => Start::State {
                    initial_end_bookmark: false,
                },
                (_, Some(s)) => Start::From(s.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version {s:?}"))
                })?),
            };
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Ok(WatchSpec {
            filter,
            start,
            bookmarks,
            timeout,
        })
    }
}

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
    line("BOOKMARK", obj.to_string().as_bytes())
}

fn expired_line(message: &str) -> Bytes {
    let status = ApiError::expired(message).to_status();
    line("ERROR", status.to_string().as_bytes())
}

/// The event as this watcher sees it, honouring selector transitions.
fn translate(info: &ResourceInfo, filter: &Filter, ev: &Event) -> Option<Bytes> {
    if ev.key.resource != info.storage {
        return None;
    }
    let now = filter.matches(info, &ev.object.value);
    let before = ev
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches(info, &p.value));
    let kind = match ev.kind {
        EventType::Added => now.then_some("ADDED")?,
        EventType::Deleted => before.then_some("DELETED")?,
        EventType::Modified => match (before, now) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
    };
    if kind == ev.kind.as_str() && same_view(info, &ev.object) {
        // The common case: every watcher sends the same bytes; encode them once.
        return Some(
            ev.encoded
                .get_or_init(|| line(kind, &ev.object.json))
                .clone(),
        );
    }
    Some(line(kind, &view_json(info, &ev.object)))
}

/// Start a watch: the returned receiver yields body chunks until the watch ends.
pub fn start(ctx: &Arc<Ctx>, info: Arc<ResourceInfo>, spec: WatchSpec) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        run(&ctx, &info, spec, &tx).await;
    });
    rx
}

async fn run(ctx: &Ctx, info: &ResourceInfo, spec: WatchSpec, tx: &mpsc::Sender<Bytes>) {
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let (initial, mut last_rv, mut rx, replay): (Vec<Arc<Stored>>, u64, _, Vec<Arc<Event>>) =
        match spec.start {
            Start::State { .. } => {
                let (items, rv, rx) = ctx
                    .store
                    .snapshot_and_watch(&info.storage, spec.filter.namespace.as_deref());
                ctx.store.wait_durable(rv).await;
                (items, rv, rx, Vec::new())
            }
            Start::From(from) => match ctx.store.watch_from(from) {
                Ok((replay, rx)) => (Vec::new(), from, rx, replay),
                Err(e) => {
                    let _ = tx
                        .send(expired_line(&format!(
                            "too old resource version: {from} ({})",
                            e.oldest
                        )))
                        .await;
                    return;
                }
            },
        };
    for stored in &initial {
        if spec.filter.matches(info, &stored.value)
            && tx
                .send(line("ADDED", &view_json(info, stored)))
                .await
                .is_err()
        {
            return;
        }
    }
    if matches!(
        spec.start,
        Start::State {
            initial_end_bookmark: true
        }
    ) && tx.send(bookmark(info, last_rv, true)).await.is_err()
    {
        return;
    }
    for ev in &replay {
        if ev.rv > last_rv {
            last_rv = ev.rv;
            if let Some(l) = translate(info, &spec.filter, ev)
                && tx.send(l).await.is_err()
            {
                return;
            }
        }
    }
    let mut shutdown = ctx.shutdown.clone();
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + ctx.bookmark_interval,
        ctx.bookmark_interval,
    );
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Ok(ev) => {
                    if ev.rv <= last_rv {
                        continue;
                    }
                    last_rv = ev.rv;
                    if let Some(l) = translate(info, &spec.filter, &ev)
                        && tx.send(l).await.is_err() {
                            return;
                        }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // This watcher fell behind the event buffer: make the client relist.
                    let _ = tx.send(expired_line(&format!("too old resource version: {last_rv}"))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                if spec.bookmarks && tx.send(bookmark(info, last_rv, false)).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if spec.bookmarks {
                    let _ = tx.send(bookmark(info, last_rv, false)).await;
                }
                return;
            }
            () = crate::api::stopped(&mut shutdown) => return,
            () = tx.closed() => return,
        }
    }
}
