//! Prometheus metrics of the router (OpenMetrics text at `/metrics`).
//!
//! - `rivulet_router_requests_total{namespace,name,code}`: answered function requests;
//! - `rivulet_router_request_duration_seconds{namespace,name}`: time to response headers;
//! - `rivulet_router_specializations_total{namespace,name,result}`: poolmgr specializations
//!   (`success`, `unavailable`, `failed`, `timeout`);
//! - `rivulet_router_cold_start_seconds{namespace,name}`: claim + specialize time of the
//!   successful ones.
//!
//! Requests that match no function (404, 405, 301) are not counted per function.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    namespace: String,
    name: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpecializationLabels {
    namespace: String,
    name: String,
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type Histograms = Family<FunctionLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms,
    specializations: Family<SpecializationLabels, Counter>,
    cold_start: Histograms,
}

/// The router's metrics; cheap to clone.
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
    /// Fresh metrics in their own registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Histograms = Family::new_with_constructor(latency_histogram);
        let specializations = Family::<SpecializationLabels, Counter>::default();
        let cold_start: Histograms = Family::new_with_constructor(latency_histogram);
        registry.register(
            "rivulet_router_requests",
            "Function requests answered, by status code",
            requests.clone(),
        );
        registry.register(
            "rivulet_router_request_duration_seconds",
            "Time from request to response headers",
            latency.clone(),
        );
        registry.register(
            "rivulet_router_specializations",
            "poolmgr specializations by result",
            specializations.clone(),
        );
        registry.register(
            "rivulet_router_cold_start_seconds",
            "Claim and specialization time of successful specializations",
            cold_start.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                requests,
                latency,
                specializations,
                cold_start,
            }),
        }
    }

    fn function(namespace: &str, name: &str) -> FunctionLabels {
        FunctionLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A function request was answered with `code` after `elapsed`.
    pub fn request(&self, namespace: &str, name: &str, code: u16, elapsed: Duration) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                code,
            })
            .inc();
        self.inner
            .latency
            .get_or_create(&Self::function(namespace, name))
            .observe(elapsed.as_secs_f64());
    }

    /// A specialization ended with `result`; successful ones also record their duration.
    pub fn specialization(
        &self,
        namespace: &str,
        name: &str,
        result: &'static str,
        elapsed: Duration,
    ) {
        self.inner
            .specializations
            .get_or_create(&SpecializationLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                result,
            })
            .inc();
        if result == "success" {
            self.inner
                .cold_start
                .get_or_create(&Self::function(namespace, name))
                .observe(elapsed.as_secs_f64());
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let m = Metrics::new();
        m.request("default", "hello", 200, Duration::from_millis(3));
        m.specialization("default", "hello", "success", Duration::from_millis(40));
        m.specialization("default", "hello", "failed", Duration::from_millis(40));
        let text = m.encode();
        assert!(
            text.contains(
                r#"rivulet_router_requests_total{namespace="default",name="hello",code="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"result="failed"} 1"#), "{text}");
        assert!(
            text.contains(
                "rivulet_router_cold_start_seconds_count{namespace=\"default\",name=\"hello\"} 1"
            ),
            "{text}"
        );
    }
}
