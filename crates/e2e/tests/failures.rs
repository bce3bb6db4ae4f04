//! Failure paths through the real stack: poison messages, slow and failing dependencies.

use e2e::{ADMIN_TOKEN, Stack, StackOptions, trace_id_of};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};
use std::time::Duration;

const POISON_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn items() -> Value {
    json!([{ "sku": "sku-kettle", "quantity": 1 }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dlq_with_its_headers_and_the_consumer_moves_on()
-> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.infra.kafka_brokers)
        .create()?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some(format!("00-{POISON_TRACE}-b7ad6b7169203331-01").as_str()),
        })
        .insert(Header {
            key: "x-origin",
            value: Some("e2e"),
        });
    producer
        .send(
            FutureRecord::to(&stack.topic)
                .key("poison")
                .payload("{not json")
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    // The consumer did not stop: a later order is still fulfilled.
    let (status, _, order) = stack.place_order("e2e-after-poison", items()).await?;
    assert_eq!(status, 201, "{order}");
    stack
        .wait_for_status(
            order["id"].as_str().unwrap(),
            "fulfilled",
            Duration::from_secs(30),
        )
        .await?;

    // The poison message is on the DLQ: same key and payload, original headers, a reason.
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.infra.kafka_brokers)
        .set("group.id", format!("dlq-check-{}", stack.topic))
        .set("auto.offset.reset", "earliest")
        .create()?;
    dlq.subscribe(&[&format!("{}.dlq", stack.topic)])?;
    let message = tokio::time::timeout(Duration::from_secs(30), dlq.recv()).await??;
    assert_eq!(message.key(), Some(&b"poison"[..]));
    assert_eq!(message.payload(), Some(&b"{not json"[..]));
    let headers: Vec<(String, String)> = message
        .headers()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h.key.to_owned(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let header = |k: &str| {
        headers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-origin"), Some("e2e"), "{headers:?}");
    assert!(header("traceparent").is_some_and(|t| t.contains(POISON_TRACE)));
    assert!(
        header("dlq.reason").is_some_and(|r| r.starts_with("undecodable")),
        "{headers:?}"
    );
    assert_eq!(header("dlq.original.topic"), Some(stack.topic.as_str()));

    // Its consumer span (a child of the poison message's context) says what happened.
    let spans = stack
        .otlp
        .wait_for_spans(Duration::from_secs(15), |spans| {
            spans
                .iter()
                .any(|s| s.trace_id == POISON_TRACE && s.kind == 5)
        })
        .await;
    let consumer = spans
        .iter()
        .find(|s| s.trace_id == POISON_TRACE && s.kind == 5)
        .expect("a consumer span for the poison message");
    assert_eq!(consumer.attributes["demo.message.outcome"], "dead_lettered");
    assert_eq!(consumer.status_code, 2, "an error status");
    assert!(
        spans.iter().any(|s| s.trace_id == POISON_TRACE
            && s.kind == 4
            && s.name == format!("send {}.dlq", stack.topic)),
        "the DLQ write is a producer span in the same trace"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_faults_give_clear_statuses_and_visible_retries() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    let http = stack.http();
    let admin = |service: &str| format!("{}/admin/faults", stack.url(service));

    // The admin endpoint needs the token.
    let anonymous = http
        .put(admin("service-d"))
        .json(&json!({ "latency_ms": 1 }))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);

    // service-d slower than service-a's 2 s timeout: a 504 naming service-d.
    let slow = http
        .put(admin("service-d"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "route": "POST /stock/check", "latency_ms": 3000 }))
        .send()
        .await?;
    assert_eq!(slow.status(), 200);
    let (status, _, problem) = stack.place_order("e2e-slow", items()).await?;
    assert_eq!(status, 504, "{problem}");
    assert_eq!(problem["dependency"], "service-d");
    assert_eq!(problem["type"], "urn:problem-type:dependency-failure");
    http.delete(admin("service-d"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?;

    // The third party failing every call: two retries, then a 503 naming it.
    http.put(admin("third-party-stub"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "route": "POST /fraud-check", "error_rate": 1.0 }))
        .send()
        .await?
        .error_for_status()?;
    let (status, traceresponse, problem) = stack.place_order("e2e-flaky", items()).await?;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["dependency"], "third-party");
    let trace_id = trace_id_of(&traceresponse.expect("traceresponse"));
    let spans = stack
        .otlp
        .wait_for_spans(Duration::from_secs(15), |spans| {
            spans
                .iter()
                .filter(|s| {
                    s.trace_id == trace_id
                        && s.attributes
                            .get("url.full")
                            .is_some_and(|u| u.ends_with("/fraud-check"))
                })
                .count()
                >= 3
                && spans
                    .iter()
                    .any(|s| s.trace_id == trace_id && s.name == "POST /orders")
        })
        .await;
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.trace_id == trace_id
                && s.attributes
                    .get("url.full")
                    .is_some_and(|u| u.ends_with("/fraud-check"))
        })
        .collect();
    assert_eq!(
        attempts.len(),
        3,
        "one call and two retries, each a client span"
    );
    assert!(
        attempts
            .iter()
            .all(|s| s.attributes["http.response.status_code"] == "503" && s.status_code == 2)
    );
    let orders = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.name == "POST /orders")
        .unwrap();
    let retries = orders
        .events
        .iter()
        .filter(|(name, _)| name == "retrying the third-party fraud check")
        .count();
    assert_eq!(retries, 2, "each retry is an event on the request's span");

    // Faults off again: orders go through.
    http.delete(admin("third-party-stub"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?;
    let (status, _, order) = stack.place_order("e2e-recovered", items()).await?;
    assert_eq!(status, 201, "{order}");
    Ok(())
}
