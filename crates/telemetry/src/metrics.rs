//! RED metrics with exemplars, served as OpenMetrics text on `/metrics`.
//!
//! The OpenTelemetry Rust SDK records no exemplars yet (opentelemetry-rust#3369), so the
//! request metrics live in a `prometheus-client` registry that Prometheus scrapes; every
//! other metric goes over OTLP. Names and labels follow the stable HTTP semantic
//! conventions, with dots turned into underscores as Prometheus does.
//!
//! **Every exemplar resolves.** Tail sampling keeps only part of the healthy traces, so an
//! exemplar taken from any sampled request may point at a trace that was never stored.
//! Here a histogram bucket accepts a new exemplar at most once per interval, and the span
//! whose trace became the exemplar is marked with [`EXEMPLAR_ATTRIBUTE`]` = true`. The
//! collector's tail sampler keeps marked traces, and only marked traces ever appear as
//! exemplars.

use axum::{Router, http::header, response::IntoResponse, routing::get};
use opentelemetry::trace::SpanContext;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::{
        MetricType, TypedMetric,
        exemplar::HistogramWithExemplars,
        family::{Family, MetricConstructor},
    },
    registry::{Registry, Unit},
};
use std::{
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

/// Content type of OpenMetrics text; Prometheus only reads exemplars in this format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Span attribute set to `true` on the span whose trace id became an exemplar.
pub const EXEMPLAR_ATTRIBUTE: &str = "demo.exemplar";

/// Bucket bounds (seconds) recommended by the HTTP semantic conventions.
pub const HTTP_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Default minimum time between two exemplars of the same bucket: about one scrape.
pub const DEFAULT_EXEMPLAR_INTERVAL: Duration = Duration::from_secs(10);

/// The registry behind one service's `/metrics` endpoint.
///
/// The HTTP metric families live here once: every [`crate::HttpServerLayer`] and
/// [`crate::HttpClientMiddleware`] built from the same registry records into the same
/// family, so a second layer or client never registers a duplicate.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    registry: Arc<RwLock<Registry>>,
    http_server: Arc<OnceLock<HttpServerMetrics>>,
    http_client: Arc<OnceLock<HttpClientMetrics>>,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a metric under `name` (the unit suffix is appended by the encoder).
    fn register(
        &self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        metric: impl prometheus_client::registry::Metric,
    ) {
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, metric),
            None => registry.register(name, help, metric),
        }
    }

    /// Encodes every metric as OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// A router serving `GET /metrics`; merge it into the service's router.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let registry = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let body = registry.encode();
                async move { ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response() }
            }),
        )
    }
}

/// Labels of an exemplar: the trace (and span) that produced the sample.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    /// Hex trace id; Grafana's exemplar link reads this label.
    pub trace_id: String,
    /// Hex span id of the span that was measured.
    pub span_id: String,
}

/// A histogram whose buckets carry rate-limited trace exemplars.
#[derive(Clone, Debug)]
pub struct ExemplarHistogram {
    inner: HistogramWithExemplars<TraceExemplar>,
    bounds: Arc<[f64]>,
    /// Per bucket (and +Inf): milliseconds since [`clock_origin`] of the last exemplar, +1.
    last_exemplar_ms: Arc<[AtomicU64]>,
    min_interval_ms: u64,
}

impl ExemplarHistogram {
    /// A histogram with `bounds` and at most one new exemplar per bucket per `min_interval`.
    pub fn new(bounds: &[f64], min_interval: Duration) -> Self {
        Self {
            inner: HistogramWithExemplars::new(bounds.iter().copied()),
            bounds: bounds.into(),
            last_exemplar_ms: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            min_interval_ms: min_interval.as_millis() as u64,
        }
    }

    /// Records `value`. If `span` is sampled and its bucket may take a new exemplar, the
    /// span's trace becomes the exemplar and `true` is returned: the caller marks the span.
    pub fn observe(&self, value: f64, span: Option<&SpanContext>) -> bool {
        let exemplar = span
            .filter(|sc| sc.is_valid() && sc.is_sampled())
            .filter(|_| self.claim_exemplar_slot(value))
            .map(|sc| TraceExemplar {
                trace_id: sc.trace_id().to_string(),
                span_id: sc.span_id().to_string(),
            });
        let recorded = exemplar.is_some();
        let timestamp = recorded.then(SystemTime::now);
        self.inner.observe(value, exemplar, timestamp);
        recorded
    }

    fn claim_exemplar_slot(&self, value: f64) -> bool {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        let slot = &self.last_exemplar_ms[bucket];
        let now = clock_origin().elapsed().as_millis() as u64 + 1;
        let last = slot.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.min_interval_ms {
            return false;
        }
        // Only one of several concurrent requests wins the slot.
        slot.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl TypedMetric for ExemplarHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ExemplarHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.inner.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Builds the histogram of each new label set of a family.
#[derive(Clone, Debug)]
pub struct HistogramConstructor {
    min_interval: Duration,
}

impl MetricConstructor<ExemplarHistogram> for HistogramConstructor {
    fn new_metric(&self) -> ExemplarHistogram {
        ExemplarHistogram::new(&HTTP_DURATION_BUCKETS, self.min_interval)
    }
}

/// Labels of `http_server_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpServerLabels {
    /// `http.request.method`, `_OTHER` for unknown methods (bounded cardinality).
    pub http_request_method: String,
    /// `http.route`: the route template, never the raw path; empty when no route matched.
    pub http_route: String,
    /// `http.response.status_code`.
    pub http_response_status_code: u16,
}

/// Labels of `http_client_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpClientLabels {
    /// `http.request.method`.
    pub http_request_method: String,
    /// `server.address` of the peer.
    pub server_address: String,
    /// `server.port` of the peer.
    pub server_port: u16,
    /// `http.response.status_code`, 0 when no response arrived.
    pub http_response_status_code: u16,
    /// `error.type`: empty on success, the status code or a transport error class.
    pub error_type: String,
}

type HistogramFamily<L> = Family<L, ExemplarHistogram, HistogramConstructor>;

/// Request duration (and, through `_count`, request rate) of an HTTP server.
#[derive(Clone)]
pub struct HttpServerMetrics {
    duration: HistogramFamily<HttpServerLabels>,
}

impl HttpServerMetrics {
    /// `http_server_request_duration_seconds` of `registry`, registered on first use.
    pub fn new(registry: &MetricsRegistry) -> Self {
        registry
            .http_server
            .get_or_init(|| Self::register(registry, DEFAULT_EXEMPLAR_INTERVAL))
            .clone()
    }

    fn register(registry: &MetricsRegistry, min_interval: Duration) -> Self {
        let duration = Family::new_with_constructor(HistogramConstructor { min_interval });
        registry.register(
            "http_server_request_duration",
            "Duration of HTTP server requests",
            Some(Unit::Seconds),
            duration.clone(),
        );
        Self { duration }
    }

    /// Records one request; returns true if its trace became an exemplar.
    pub fn record(
        &self,
        labels: &HttpServerLabels,
        elapsed: Duration,
        span: Option<&SpanContext>,
    ) -> bool {
        self.duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64(), span)
    }
}

/// Request duration of an HTTP client, per peer.
#[derive(Clone)]
pub struct HttpClientMetrics {
    duration: HistogramFamily<HttpClientLabels>,
}

impl HttpClientMetrics {
    /// `http_client_request_duration_seconds` of `registry`, registered on first use.
    pub(crate) fn new(registry: &MetricsRegistry) -> Self {
        registry
            .http_client
            .get_or_init(|| Self::register(registry))
            .clone()
    }

    fn register(registry: &MetricsRegistry) -> Self {
        let duration = Family::new_with_constructor(HistogramConstructor {
            min_interval: DEFAULT_EXEMPLAR_INTERVAL,
        });
        registry.register(
            "http_client_request_duration",
            "Duration of outgoing HTTP requests",
            Some(Unit::Seconds),
            duration.clone(),
        );
        Self { duration }
    }

    /// Records one outgoing request; returns true if its trace became an exemplar.
    pub fn record(
        &self,
        labels: &HttpClientLabels,
        elapsed: Duration,
        span: Option<&SpanContext>,
    ) -> bool {
        self.duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64(), span)
    }
}

/// Maps a method to its semantic-conventions label: known methods as is, else `_OTHER`.
pub fn method_label(method: &http::Method) -> &str {
    match *method {
        http::Method::GET
        | http::Method::POST
        | http::Method::PUT
        | http::Method::DELETE
        | http::Method::PATCH
        | http::Method::HEAD
        | http::Method::OPTIONS
        | http::Method::TRACE
        | http::Method::CONNECT => method.as_str(),
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn span(trace: u128, sampled: bool) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(7),
            flags,
            false,
            TraceState::default(),
        )
    }

    fn labels() -> HttpServerLabels {
        HttpServerLabels {
            http_request_method: "GET".into(),
            http_route: "/orders/{id}".into(),
            http_response_status_code: 200,
        }
    }

    #[test]
    fn sampled_request_becomes_an_exemplar_and_unsampled_does_not() {
        let registry = MetricsRegistry::new();
        let metrics = HttpServerMetrics::register(&registry, Duration::ZERO);
        assert!(!metrics.record(&labels(), Duration::from_millis(3), Some(&span(1, false))));
        assert!(metrics.record(
            &labels(),
            Duration::from_millis(30),
            Some(&span(0xabc, true))
        ));
        let text = registry.encode();
        assert!(
            text.contains("# TYPE http_server_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"trace_id="00000000000000000000000000000abc""#),
            "{text}"
        );
        assert!(!text.contains(r#"trace_id="00000000000000000000000000000001""#));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn a_registry_holds_each_http_family_once() {
        let registry = MetricsRegistry::new();
        let (first, second) = (
            HttpServerMetrics::new(&registry),
            HttpServerMetrics::new(&registry),
        );
        let client = HttpClientLabels {
            http_request_method: "GET".into(),
            server_address: "service-d".into(),
            server_port: 8084,
            http_response_status_code: 200,
            error_type: String::new(),
        };
        for metrics in [
            HttpClientMetrics::new(&registry),
            HttpClientMetrics::new(&registry),
        ] {
            metrics.record(&client, Duration::from_millis(3), None);
        }
        first.record(&labels(), Duration::from_millis(3), None);
        second.record(&labels(), Duration::from_millis(3), None);
        let text = registry.encode();
        for family in [
            "http_server_request_duration_seconds",
            "http_client_request_duration_seconds",
        ] {
            let declared = format!("# TYPE {family} histogram");
            assert_eq!(text.matches(&declared).count(), 1, "{text}");
        }
        // Both handles record into the one family.
        assert!(text.contains("http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/orders/{id}\",http_response_status_code=\"200\"} 2"), "{text}");
    }

    #[test]
    fn a_bucket_takes_one_exemplar_per_interval() {
        let h = ExemplarHistogram::new(&HTTP_DURATION_BUCKETS, Duration::from_secs(3600));
        assert!(h.observe(0.001, Some(&span(1, true))));
        // Same bucket within the interval: counted, but no new exemplar.
        assert!(!h.observe(0.002, Some(&span(2, true))));
        // Another bucket has its own slot.
        assert!(h.observe(0.3, Some(&span(3, true))));
        // +Inf has a slot too.
        assert!(h.observe(60.0, Some(&span(4, true))));
    }

    #[test]
    fn unknown_methods_collapse_to_other() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}
