//! Prometheus metrics of the reconcilers: per reconciler (label `reconciler`), how many reconciles
//! completed, how many failed and why (label `reason`, the error's `metric_label()`), and how long
//! they took; plus whether this replica currently leads.
//!
//! [`Metrics::instrument`] wraps a reconcile function in one line, keeping the signature that
//! kube's `Controller::run` expects:
//!
//! ```ignore
//! let reconcile = metrics.instrument("environment", reconcile, Error::metric_label);
//! controller.run(reconcile, error_policy, ctx)
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::runtime::controller::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Prefix of every metric name.
pub const PREFIX: &str = "rivulet";

/// Upper bounds (seconds) of the reconcile duration buckets: a converged reconcile is a few reads
/// (milliseconds); a pool roll or a slow API server takes seconds.
const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcilerLabels {
    reconciler: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    reconciler: &'static str,
    reason: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    trigger: &'static str,
    outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

struct Inner {
    registry: Registry,
    reconciles: Family<ReconcilerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<ReconcilerLabels, Histogram, fn() -> Histogram>,
    leader: Gauge,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_duration: Family<ReconcilerLabels, Histogram, fn() -> Histogram>,
    requests: Family<RequestLabels, Counter>,
}

/// A cheap-to-clone handle on the controller's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (and no series yet).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reconciles = Family::<ReconcilerLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration: Family<ReconcilerLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let leader = Gauge::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let delivery_duration: Family<ReconcilerLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "reconcile",
            "Reconciles completed (successful or failed), per reconciler",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that returned an error, per reconciler and error reason",
            failures.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of completed reconciles, per reconciler",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (or runs without leader election), else 0",
            leader.clone(),
        );
        registry.register(
            "trigger_deliveries",
            "Function calls made by a trigger (kubewatcher, timer), per outcome: delivered, rejected (4xx), exhausted (retries used up)",
            deliveries.clone(),
        );
        registry.register_with_unit(
            "trigger_delivery_duration",
            "Time from a trigger's first attempt to its outcome, retries included, per trigger (label reconciler)",
            prometheus_client::registry::Unit::Seconds,
            delivery_duration.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Requests this process sent to the Kubernetes API server, per verb and resource",
            requests.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                failures,
                duration,
                leader,
                deliveries,
                delivery_duration,
                requests,
            }),
        }
    }

    /// Records one completed reconcile: its duration, and its failure reason if it failed.
    pub fn record(
        &self,
        reconciler: &'static str,
        elapsed: Duration,
        failure: Option<Cow<'static, str>>,
    ) {
        let labels = ReconcilerLabels { reconciler };
        self.inner.reconciles.get_or_create(&labels).inc();
        self.inner
            .duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.inner
                .failures
                .get_or_create(&FailureLabels { reconciler, reason })
                .inc();
        }
    }

    /// Records one trigger call: its outcome (`delivered`, `rejected`, `exhausted`) and how long
    /// it took, retries included.
    pub fn record_delivery(&self, trigger: &'static str, outcome: &'static str, elapsed: Duration) {
        self.inner
            .deliveries
            .get_or_create(&DeliveryLabels { trigger, outcome })
            .inc();
        self.inner
            .delivery_duration
            .get_or_create(&ReconcilerLabels {
                reconciler: trigger,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the `rivulet_leader` gauge.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// Consumes this handle (clone it first to keep one: clones share the registry) and wraps
    /// `reconcile` so that every call is counted and timed under `reconciler`, and every
    /// error counted under the reason `reason(&error)` gives. The result has the shape kube's
    /// `Controller::run` takes as its reconciler.
    pub fn instrument<K, Ctx, E, Fut, R, F>(
        self,
        reconciler: &'static str,
        mut reconcile: F,
        reason: fn(&E) -> R,
    ) -> impl FnMut(Arc<K>, Arc<Ctx>) -> BoxFuture<'static, Result<Action, E>>
    where
        F: FnMut(Arc<K>, Arc<Ctx>) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: 'static,
        R: Into<Cow<'static, str>> + 'static,
    {
        // The series exist (at 0) from the start, so rates are defined before the first reconcile.
        drop(
            self.inner
                .reconciles
                .get_or_create(&ReconcilerLabels { reconciler }),
        );
        let metrics = self;
        move |object, ctx| {
            let metrics = metrics.clone();
            let started = Instant::now();
            reconcile(object, ctx)
                .map(move |result| {
                    let failure = result.as_ref().err().map(|e| reason(e).into());
                    metrics.record(reconciler, started.elapsed(), failure);
                    result
                })
                .boxed()
        }
    }

    /// A tower layer for kube's `ClientBuilder::with_layer` that counts every request the
    /// client sends in `rivulet_api_requests_total{verb,resource}`: what the caches and
    /// reconciles cost the API server (docs/performance.md, "Reconcilers at scale").
    pub fn api_request_layer(&self) -> ApiRequestLayer {
        ApiRequestLayer(self.clone())
    }

    /// The registry in the text exposition format (OpenMetrics 1.0, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// See [`Metrics::api_request_layer`].
#[derive(Clone, Debug)]
pub struct ApiRequestLayer(Metrics);

impl<S> tower::Layer<S> for ApiRequestLayer {
    type Service = CountedRequests<S>;
    fn layer(&self, inner: S) -> CountedRequests<S> {
        CountedRequests {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service [`ApiRequestLayer`] wraps around kube's.
#[derive(Clone, Debug)]
pub struct CountedRequests<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B> tower::Service<hyper::http::Request<B>> for CountedRequests<S>
where
    S: tower::Service<hyper::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, request: hyper::http::Request<B>) -> S::Future {
        let (verb, resource) = classify(request.method().as_str(), request.uri());
        self.metrics
            .inner
            .requests
            .get_or_create(&RequestLabels { verb, resource })
            .inc();
        self.inner.call(request)
    }
}

/// The Kubernetes verb and resource of a request: `/api/v1/namespaces/ns/pods/p` → (`get`,
/// `pods`), `.../pods/p/status` → (`patch`, `pods/status`); discovery and `/version` → (`get`,
/// `discovery`).
fn classify(method: &str, uri: &hyper::http::Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // After `api/<version>` or `apis/<group>/<version>`.
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        _ => rest,
    };
    let resource = match rest {
        [] => return ("get", "discovery".to_owned()),
        [resource, _, sub, ..] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_owned(),
    };
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match (method, rest.len() > 1) {
        ("GET", _) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "other",
    };
    (verb, resource)
}

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Boom {
        #[error("boom")]
        Boom,
    }

    impl Boom {
        fn metric_label(&self) -> &'static str {
            match self {
                Self::Boom => "boom",
            }
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[tokio::test]
    async fn instrumented_reconciles_are_counted_timed_and_failures_labelled() {
        let metrics = Metrics::new();
        let mut reconcile = metrics.clone().instrument(
            "demo",
            |fail: Arc<bool>, _ctx: Arc<()>| async move {
                if *fail {
                    Err(Boom::Boom)
                } else {
                    Ok(Action::await_change())
                }
            },
            |e: &Boom| e.metric_label(),
        );
        let before = metrics.encode();
        assert_eq!(
            line(&before, "rivulet_reconcile_total{"),
            Some(r#"rivulet_reconcile_total{reconciler="demo"} 0"#)
        );
        reconcile(Arc::new(false), Arc::new(())).await.unwrap();
        assert!(reconcile(Arc::new(true), Arc::new(())).await.is_err());
        reconcile(Arc::new(false), Arc::new(())).await.unwrap();

        let text = metrics.encode();
        assert_eq!(
            line(&text, "rivulet_reconcile_total{"),
            Some(r#"rivulet_reconcile_total{reconciler="demo"} 3"#)
        );
        assert_eq!(
            line(&text, "rivulet_reconcile_failures_total{"),
            Some(r#"rivulet_reconcile_failures_total{reconciler="demo",reason="boom"} 1"#)
        );
        assert_eq!(
            line(&text, "rivulet_reconcile_duration_seconds_count{"),
            Some(r#"rivulet_reconcile_duration_seconds_count{reconciler="demo"} 3"#)
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn requests_are_classified_by_verb_and_resource() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1",
                ("watch", "pods"),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?labelSelector=a",
                ("list", "pods"),
            ),
            (
                "GET",
                "/apis/fission.io/v1/environments",
                ("list", "environments"),
            ),
            (
                "GET",
                "/apis/fission.io/v1/namespaces/ns/packages/p",
                ("get", "packages"),
            ),
            (
                "PATCH",
                "/apis/fission.io/v1/namespaces/ns/functions/f/status",
                ("patch", "functions/status"),
            ),
            ("POST", "/api/v1/namespaces/ns/pods", ("create", "pods")),
            ("DELETE", "/api/v1/namespaces/ns/pods/p", ("delete", "pods")),
            ("GET", "/api/v1/namespaces/ns", ("get", "namespaces")),
            ("GET", "/version", ("get", "discovery")),
            ("GET", "/apis/apps/v1", ("get", "discovery")),
        ];
        for (method, uri, (verb, resource)) in cases {
            let uri: hyper::http::Uri = uri.parse().unwrap();
            assert_eq!(
                classify(method, &uri),
                (verb, resource.to_owned()),
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn leader_gauge_follows_leadership() {
        let metrics = Metrics::new();
        assert!(metrics.encode().contains("rivulet_leader 0\n"));
        metrics.set_leader(true);
        assert!(metrics.encode().contains("rivulet_leader 1\n"));
    }
}
