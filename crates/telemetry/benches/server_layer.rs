//! Per-request cost of the server layer and per-span cost, measured side by side.
//!
//! The pipeline is the production one (tracing -> tracing-opentelemetry -> SDK batch
//! processor) with an exporter that discards, so the figures are the in-process cost of
//! instrumentation without network I/O. Run: `cargo bench -p telemetry --bench server_layer`.

use axum::{Router, body::Body, extract::Path, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter},
};
use std::hint::black_box;
use telemetry::{HttpServerLayer, MetricsRegistry};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn pipeline() -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let subscriber = tracing_subscriber::registry()
        // The bridge as `telemetry::init` sets it up: none of its optional attributes.
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("bench"))
                .with_tracked_inactivity(false)
                .with_target(false)
                .with_location(false)
                .with_threads(false),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    telemetry::testing::install_w3c_propagators();
    provider
}

fn app() -> Router {
    Router::new().route(
        "/orders/{id}",
        get(|Path(id): Path<u64>| async move { format!("order {id}") }),
    )
}

fn request() -> Request<Body> {
    Request::get("/orders/42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let provider = pipeline();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = app();
    let registry = MetricsRegistry::new();
    let instrumented = app().layer(HttpServerLayer::new(&registry));

    let mut group = c.benchmark_group("request");
    group.bench_function("bare_router", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(bare.clone().oneshot(request()).await.unwrap()) })
    });
    group.bench_function("instrumented_router", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(instrumented.clone().oneshot(request()).await.unwrap()) })
    });
    group.finish();

    let tracer = provider.tracer("bench");
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
    let _ = provider.shutdown();
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
