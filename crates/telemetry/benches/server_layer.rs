//! Per-request cost of the server layer and per-span cost, measured side by side.
//!
//! The pipeline is the production one as `telemetry::init` builds it (tracing ->
//! tracing-opentelemetry -> the redacting processor -> the SDK's batch span processor; the
//! access log as a JSON line in the crate's own format through the crate's batched stdout
//! writer, and as an OpenTelemetry log record through the redacting and batch log processors)
//! with exporters and a writer that discard, so the figures are the in-process cost of
//! instrumentation without network I/O. The crate's private modules it needs (`logs`,
//! `redaction`, `stdout`) are compiled into the bench from their source files.
//! `BENCH_STDOUT_SPAN_FIELDS=1` formats span fields for stdout and `BENCH_STDOUT_PER_LINE_WAKE=1`
//! writes through tracing-appender's non-blocking writer, as init did before: the earlier
//! before-and-after of docs/BENCHMARKS.md.
//! Run: `cargo bench -p telemetry --bench server_layer`.
//!
//! `request/*` is one request through an axum router: bare, with [`HttpServerLayer`], and
//! with axum-tracing-opentelemetry's layer on the same router. `piece/*` is each part of
//! the server layer's work alone (the counting profile of docs/BENCHMARKS.md).

use axum::{Router, body::Body, extract::Path, routing::get};
use axum_tracing_opentelemetry::middleware::{OtelAxumLayer, OtelInResponseLayer};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Request};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider},
    trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter},
};
use std::{hint::black_box, time::Duration};
use telemetry::{
    HttpServerLayer, MetricsRegistry,
    manual::{HeaderExtractor, HttpServerLabels, HttpServerMetrics, traceresponse},
};
use tower::ServiceExt;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, filter::filter_fn, fmt::writer::BoxMakeWriter, layer::SubscriberExt,
};

// The crate's private JSON log format, redaction processors and stdout writer, compiled
// into the bench from their source files (with their unit tests, which do not run here).
#[allow(dead_code, unused_imports)]
#[path = "../src/logs.rs"]
mod logs;
#[allow(dead_code, unused_imports)]
#[path = "../src/redaction.rs"]
mod redaction;
#[allow(dead_code)]
#[path = "../src/stdout.rs"]
mod stdout;
// What `logs.rs`'s unit tests reach through `crate::`.
#[cfg(test)]
use telemetry::testing;

/// The bridge as `telemetry::init` sets it up (a copy of the crate's private `span_bridge`):
/// none of its optional attributes, and the access-log line is a log record, not a span
/// event too.
fn span_bridge<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_location(false)
        .with_threads(false)
        .with_filter(filter_fn(|meta| {
            !(meta.is_event() && meta.target() == "telemetry::http_server")
        }))
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

impl LogExporter for Discard {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

struct Pipeline {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
    _stdout: Box<dyn std::any::Any>,
}

fn pipeline() -> Pipeline {
    let tracer = SdkTracerProvider::builder()
        .with_span_processor(redaction::RedactingSpanProcessor::new(
            BatchSpanProcessor::builder(Discard).build(),
        ))
        .build();
    let logger = SdkLoggerProvider::builder()
        .with_log_processor(redaction::RedactingLogProcessor::new(
            BatchLogProcessor::builder(Discard).build(),
        ))
        .build();
    // BENCH_STDOUT_PER_LINE_WAKE=1: tracing-appender's non-blocking writer, as init had it.
    let (stdout, guard): (BoxMakeWriter, Box<dyn std::any::Any>) =
        if std::env::var_os("BENCH_STDOUT_PER_LINE_WAKE").is_some() {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(true)
                .finish(std::io::sink());
            (BoxMakeWriter::new(writer), Box::new(guard))
        } else {
            let (writer, guard) = stdout::batched(std::io::sink());
            (BoxMakeWriter::new(writer), Box::new(guard))
        };
    let stdout_layer = if std::env::var_os("BENCH_STDOUT_SPAN_FIELDS").is_some() {
        tracing_subscriber::fmt::layer()
            .event_format(logs::JsonLogFormat)
            .with_writer(stdout)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(logs::SkipSpanFields)
            .event_format(logs::JsonLogFormat)
            .with_writer(stdout)
            .boxed()
    };
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(stdout_layer)
        .with(span_bridge(tracer.tracer("bench")))
        // As init: the exporters' own logs are not exported again.
        .with(
            OpenTelemetryTracingBridge::new(&logger).with_filter(filter_fn(|meta| {
                !["opentelemetry", "hyper", "h2", "tonic", "tower", "reqwest"]
                    .iter()
                    .any(|prefix| meta.target().starts_with(prefix))
            })),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    telemetry::testing::install_w3c_propagators();
    Pipeline {
        tracer,
        logger,
        _stdout: guard,
    }
}

fn app() -> Router {
    Router::new().route(
        "/orders/{id}",
        get(|Path(id): Path<u64>| async move { format!("order {id}") }),
    )
}

fn request() -> Request<Body> {
    Request::get("/orders/42")
        .header("host", "service-a:8081")
        .header("user-agent", "bench/1.0")
        .header("traceparent", TRACEPARENT)
        .body(Body::empty())
        .unwrap()
}

/// The server span as `HttpServerLayer` opens it (the same fields, values known at open).
fn server_span() -> tracing::Span {
    let route = Some("/orders/{id}");
    let name = format!("{} {}", "GET", "/orders/{id}");
    tracing::info_span!(
        "HTTP request",
        otel.name = name.as_str(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = "GET",
        http.route = route,
        http.response.status_code = Empty,
        url.path = "/orders/42",
        url.query = None::<&str>,
        url.scheme = "http",
        server.address = Some("service-a"),
        server.port = Some(8081_i64),
        network.protocol.version = "1.1",
        user_agent.original = Some("bench/1.0"),
        error.type = Empty,
        demo.exemplar = Empty,
    )
}

/// The server span as the layer opened it before: most fields `Empty`, then `record`ed.
fn server_span_empty_then_record() -> tracing::Span {
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format!("{} {}", "GET", "/orders/{id}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %"GET",
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = %"/orders/42",
        url.query = Empty,
        url.scheme = "http",
        server.address = Empty,
        server.port = Empty,
        network.protocol.version = "1.1",
        user_agent.original = Empty,
        error.type = Empty,
        demo.exemplar = Empty,
    );
    span.record("http.route", "/orders/{id}");
    span.record("server.address", "service-a");
    span.record("server.port", 8081_i64);
    span.record("user_agent.original", "bench/1.0");
    span
}

fn benches(c: &mut Criterion) {
    let pipeline = pipeline();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = app();
    let registry = MetricsRegistry::new();
    let instrumented = app().layer(HttpServerLayer::new(&registry));
    // As its README sets it up: the response injector outside, the extractor inside.
    let other = app()
        .layer(OtelInResponseLayer)
        .layer(OtelAxumLayer::default());

    let mut group = c.benchmark_group("request");
    group.bench_function("bare_router", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(bare.clone().oneshot(request()).await.unwrap()) })
    });
    group.bench_function("instrumented_router", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(instrumented.clone().oneshot(request()).await.unwrap()) })
    });
    group.bench_function("axum_tracing_opentelemetry", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(other.clone().oneshot(request()).await.unwrap()) })
    });
    group.finish();

    // Each part of the server layer's work alone, in the order the layer does it.
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", TRACEPARENT.parse().unwrap());
    let metrics = HttpServerMetrics::new(&MetricsRegistry::new());
    let labels = HttpServerLabels {
        http_request_method: "GET".into(),
        http_route: "/orders/{id}".into(),
        http_response_status_code: 200,
    };
    let mut group = c.benchmark_group("piece");
    group.bench_function("extract_traceparent", |b| {
        b.iter(|| {
            opentelemetry::global::get_text_map_propagator(|p| {
                black_box(p.extract(&HeaderExtractor(&headers)))
            })
        })
    });
    group.bench_function("server_span_open_enter_close", |b| {
        b.iter(|| {
            let span = server_span();
            let _ = span.set_parent(opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(&headers))
            }));
            span.in_scope(|| black_box(1));
            span.record("http.response.status_code", 200_i64);
        })
    });
    group.bench_function("server_span_empty_then_record", |b| {
        b.iter(|| {
            let span = server_span_empty_then_record();
            let _ = span.set_parent(opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(&headers))
            }));
            span.in_scope(|| black_box(1));
            span.record("http.response.status_code", 200_i64);
        })
    });
    group.bench_function("access_log_line", |b| {
        let span = server_span();
        b.iter(|| {
            span.in_scope(|| {
                tracing::event!(
                    target: "telemetry::http_server",
                    tracing::Level::INFO,
                    http.request.method = "GET",
                    http.route = "/orders/{id}",
                    http.response.status_code = 200,
                    duration_ms = 0.25,
                    "request completed"
                )
            })
        })
    });
    group.bench_function("span_context_and_traceresponse", |b| {
        let span = server_span();
        b.iter(|| {
            let sc = span.context().span().span_context().clone();
            black_box(traceresponse(&sc))
        })
    });
    group.bench_function("red_histogram", |b| {
        let span = server_span();
        let sc = span.context().span().span_context().clone();
        b.iter(|| black_box(metrics.record(&labels, Duration::from_micros(250), Some(&sc))))
    });
    group.finish();

    let tracer = pipeline.tracer.tracer("bench");
    let mut group = c.benchmark_group("span");
    group.bench_function("tracing_span_enter_exit", |b| {
        b.iter(|| tracing::info_span!("work", order.id = 42).in_scope(|| black_box(1)))
    });
    group.bench_function("otel_api_span_start_end", |b| {
        b.iter(|| {
            let mut span = tracer.start("work");
            span.end();
        })
    });
    group.finish();
    let _ = pipeline.tracer.shutdown();
    let _ = pipeline.logger.shutdown();
}

criterion_group! {
    name = server_layer;
    config = Criterion::default()
        .sample_size(50)
        .measurement_time(std::time::Duration::from_secs(4))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = benches
}
criterion_main!(server_layer);
