//! What the stack exports when nothing happens, and the names its spans use: an idle
//! stack makes no traces, and every span attribute is an OpenTelemetry semantic
//! convention or in the project's own `demo.` namespace. (Span *events* are log lines
//! attached to a span; their fields are log fields and are not checked here.)

use e2e::{SERVICES, Stack, StackOptions};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::json;
use std::{collections::BTreeSet, time::Duration};

/// Every semantic-conventions attribute the services put on spans and span events, named
/// by the crate's constants: a key that is not a convention does not compile here.
const SEMANTIC_CONVENTIONS: &[&str] = &[
    semconv::DB_COLLECTION_NAME,
    semconv::DB_OPERATION_NAME,
    semconv::DB_QUERY_TEXT,
    semconv::DB_SYSTEM_NAME,
    semconv::ERROR_TYPE,
    semconv::HTTP_REQUEST_METHOD,
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::HTTP_ROUTE,
    semconv::MESSAGING_CONSUMER_GROUP_NAME,
    semconv::MESSAGING_DESTINATION_NAME,
    semconv::MESSAGING_DESTINATION_PARTITION_ID,
    semconv::MESSAGING_KAFKA_MESSAGE_KEY,
    semconv::MESSAGING_KAFKA_OFFSET,
    semconv::MESSAGING_MESSAGE_BODY_SIZE,
    semconv::MESSAGING_MESSAGE_ID,
    semconv::MESSAGING_OPERATION_NAME,
    semconv::MESSAGING_OPERATION_TYPE,
    semconv::MESSAGING_SYSTEM,
    semconv::NETWORK_PROTOCOL_VERSION,
    semconv::SERVER_ADDRESS,
    semconv::SERVER_PORT,
    semconv::URL_FULL,
    semconv::URL_PATH,
    semconv::URL_QUERY,
    semconv::URL_SCHEME,
    semconv::USER_AGENT_ORIGINAL,
];

/// The project's own attributes all start with this (docs/TRACING.md).
const PROJECT_NAMESPACE: &str = "demo.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stack_exports_no_spans() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    // Startup is not idleness: let its telemetry arrive, then forget it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.otlp.drain();
    let metrics_before = stack.otlp.metrics().len();

    // 15 s of what an idle deployment still does: the outbox relay ticks (every 300 ms
    // here), service-c polls Kafka, and probes and scrapes hit every service.
    for _ in 0..15 {
        for service in SERVICES {
            for path in ["/healthz", "/readyz", "/metrics"] {
                let url = format!("{}{path}", stack.url(service));
                let status = stack.http().get(&url).send().await?.status();
                anyhow::ensure!(status.is_success(), "{url}: {status}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Exports kept flowing meanwhile (metrics every second), so "no spans" is not a
    // dead exporter.
    anyhow::ensure!(
        stack.otlp.metrics().len() > metrics_before,
        "no metrics exported while idle: the exporters are not running"
    );
    let spans = stack.otlp.drain().spans;
    let described: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {} parent={:?}",
                s.service_name, s.name, s.parent_span_id
            )
        })
        .collect();
    assert!(
        spans.is_empty(),
        "an idle stack exported {} spans:\n{}",
        spans.len(),
        described.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_attribute_is_a_semantic_convention_or_the_projects() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    let items = json!([{ "sku": "sku-espresso", "quantity": 1 }]);
    let (status, _, order) = stack.place_order("e2e-attributes", items).await?;
    anyhow::ensure!(status == 201, "{order}");
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    stack
        .wait_for_status(&order_id, "fulfilled", Duration::from_secs(30))
        .await?;
    // Failures carry their own attributes (error.type, exception events): a 404, a 400
    // and a 502 from an upstream that is down.
    let gateway = stack.url("api-gateway");
    stack
        .http()
        .get(format!(
            "{gateway}/api/orders/00000000-0000-0000-0000-000000000000?page=1"
        ))
        .send()
        .await?;
    stack
        .http()
        .post(format!("{gateway}/api/orders"))
        .json(&json!({ "customer_id": "", "items": [] }))
        .send()
        .await?;
    let spans = stack
        .otlp
        .wait_for_spans(Duration::from_secs(30), |spans| {
            spans
                .iter()
                .any(|s| s.service_name == "service-c" && s.kind == 5)
        })
        .await;
    // Give the last batches (200 ms schedule) time to land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spans = [spans, stack.otlp.spans()].concat();

    let allowed: BTreeSet<&str> = SEMANTIC_CONVENTIONS.iter().copied().collect();
    // `http.request.header.<name>` is a convention with the header name as its last part.
    let header_template = format!("{}.", semconv::HTTP_REQUEST_HEADER);
    let mut offending = BTreeSet::new();
    for span in &spans {
        for key in span.attributes.keys() {
            if !allowed.contains(key.as_str())
                && !key.starts_with(&header_template)
                && !key.starts_with(PROJECT_NAMESPACE)
            {
                offending.insert(format!("{key} (on {} {:?})", span.service_name, span.name));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "attributes that are neither a semantic convention nor `{PROJECT_NAMESPACE}*`:\n{}",
        offending.into_iter().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}
