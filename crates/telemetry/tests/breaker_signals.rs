//! A circuit breaker transition, through the public API (the reqwest middleware), is a
//! span event on the caller's span and a JSON log line with the caller's trace id (the
//! metric side is a unit test in `breaker.rs`).

use std::{sync::Arc, time::Duration};
use telemetry::breaker::{BreakerConfig, BreakerMiddleware, BreakerOpen, CircuitBreaker};
use tracing::Instrument;

#[tokio::test]
async fn a_transition_is_a_span_event_and_a_log_line() {
    let exporter = telemetry::testing::in_memory_tracing();
    let logs = telemetry::testing::pipeline_logs();

    let breaker = Arc::new(CircuitBreaker::new(
        "service-b",
        BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        },
    ));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BreakerMiddleware::new(breaker))
        .build();
    // Nothing listens on a port that was just closed: each call fails to connect.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let third = async {
        for _ in 0..2 {
            assert!(client.get(&closed).send().await.is_err());
        }
        client.get(&closed).send().await
    }
    .instrument(tracing::info_span!("send order event"))
    .await;
    // The third call is rejected by the open breaker without a request.
    match third {
        Err(reqwest_middleware::Error::Middleware(e)) => assert!(e.is::<BreakerOpen>(), "{e}"),
        other => panic!("expected BreakerOpen, got {other:?}"),
    }

    let spans = exporter.get_finished_spans().unwrap();
    let span = spans.iter().find(|s| s.name == "send order event").unwrap();
    let event = span
        .events
        .iter()
        .find(|e| e.name == "circuit breaker state changed")
        .unwrap_or_else(|| panic!("no transition event on the span: {:#?}", span.events));
    let attr = |k: &str| {
        event
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("breaker.from").as_deref(), Some("closed"));
    assert_eq!(attr("breaker.to").as_deref(), Some("open"));

    let lines = logs.json_lines();
    let line = lines
        .iter()
        .find(|l| l["message"] == "circuit breaker state changed")
        .unwrap_or_else(|| panic!("no log line: {lines:?}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["breaker"], "service-b");
    assert_eq!(line["fields"]["breaker.to"], "open");
    assert_eq!(line["trace_id"], span.span_context.trace_id().to_string());
}
