//! The same service as `examples/auto.rs`, instrumented by hand with the OpenTelemetry
//! API: the server span is made in a middleware you can read line by line. Run it with
//! `cargo run -p telemetry --example manual`; `cargo test` runs the test at the bottom.

use axum::{Router, extract::Path, extract::Request, middleware::Next, response::Response};
use opentelemetry::{
    KeyValue, global,
    trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_semantic_conventions::attribute::{
    HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, URL_PATH,
};
use telemetry::manual::{HeaderExtractor, method_label};

fn app() -> Router {
    Router::new()
        .route("/hello/{name}", axum::routing::get(hello))
        // route_layer: the middleware runs after routing, so it knows the route template.
        .route_layer(axum::middleware::from_fn(server_span))
}

async fn hello(Path(name): Path<String>) -> String {
    tracing::info!(%name, "saying hello");
    format!("hello {name}\n")
}

/// One SERVER span per request, by hand.
async fn server_span(request: Request, next: Next) -> Response {
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // 1. Continue the caller's trace from traceparent/tracestate/baggage.
    let parent =
        global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    // 2. Start the span as its child, with the HTTP conventions.
    let tracer = global::tracer("example-manual");
    let span = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new(HTTP_REQUEST_METHOD, method),
            KeyValue::new(HTTP_ROUTE, route),
            KeyValue::new(URL_PATH, request.uri().path().to_owned()),
        ])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);
    // 3. Run the handler with the span's context current.
    let response = next.run(request).with_context(cx.clone()).await;
    // 4. Record the outcome and end the span.
    let status = response.status().as_u16();
    cx.span()
        .set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
    if status >= 500 {
        cx.span().set_status(Status::error(""));
    }
    cx.span().end();
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = telemetry::init("example-manual")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 3000)).await?;
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    telemetry.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_server_span_continues_the_callers_trace() {
        let spans = telemetry::testing::in_memory_tracing();
        let request = http::Request::get("/hello/ada")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);

        let spans = spans.get_finished_spans().unwrap();
        let span = spans
            .iter()
            .find(|s| s.name == "GET /hello/{name}")
            .expect("server span");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    }
}
