//! A circuit breaker transition is a span event on the caller's span and a JSON log line
//! with the caller's trace id (the metric side is a unit test in `breaker.rs`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use std::time::Duration;
use telemetry::breaker::{BreakerConfig, CircuitBreaker};
use telemetry::testing::CapturedLogs;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn a_transition_is_a_span_event_and_a_log_line() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let logs = CapturedLogs::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(telemetry::logs::JsonLogFormat)
                    .with_writer(logs.clone()),
            ),
    )
    .unwrap();

    let breaker = CircuitBreaker::with_meter(
        "service-b",
        BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        },
        &opentelemetry::global::meter("test"),
    );
    async {
        for _ in 0..2 {
            let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
        }
    }
    .instrument(tracing::info_span!("send order event"))
    .await;

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
