//! The smallest auto-instrumented service: `telemetry::init`, one layer, no telemetry
//! code in the handler. Run it with `cargo run -p telemetry --example auto` (with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a collector, or `OTEL_SDK_DISABLED=true`),
//! then `curl localhost:3000/hello/ada`. `cargo test` runs the test at the bottom.

use axum::{Router, extract::Path, routing::get};
use telemetry::{HttpServerLayer, MetricsRegistry};

/// The app: routes first, then `/metrics`, then the layer, last, so it sees every route.
fn app(registry: &MetricsRegistry) -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .merge(registry.router())
        .layer(HttpServerLayer::new(registry).skip_paths(&["/metrics"]))
}

/// Plain business code. Its log line carries the request's trace id by itself.
async fn hello(Path(name): Path<String>) -> String {
    tracing::info!(%name, "saying hello");
    format!("hello {name}\n")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Traces, metrics and logs over OTLP from the OTEL_* variables; JSON logs on stdout.
    let telemetry = telemetry::init("example-auto")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 3000)).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(listener, app(&MetricsRegistry::new()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Flush what is still buffered, within a bounded time.
    telemetry.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use opentelemetry::trace::SpanKind;
    use tower::ServiceExt;

    #[tokio::test]
    async fn one_request_is_one_server_span_with_its_log_line() {
        let spans = telemetry::testing::in_memory_tracing();
        let request = http::Request::get("/hello/ada")
            .body(Body::empty())
            .unwrap();
        let response = app(&MetricsRegistry::new()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);

        let spans = spans.get_finished_spans().unwrap();
        let span = spans
            .iter()
            .find(|s| s.name == "GET /hello/{name}")
            .expect("server span");
        assert_eq!(span.span_kind, SpanKind::Server);
        let trace_id = span.span_context.trace_id().to_string();
        let logs = telemetry::testing::pipeline_logs().json_lines();
        assert!(
            logs.iter()
                .any(|l| l["message"] == "saying hello" && l["trace_id"] == trace_id.as_str()),
            "{logs:?}"
        );
    }
}
