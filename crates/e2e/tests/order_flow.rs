//! One order through the real stack: five services as separate processes, real Postgres,
//! real Kafka, and an in-test OTLP receiver. Asserts on the telemetry itself.

use e2e::{Stack, StackOptions, trace_id_of};
use otlp_receiver::Span;
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// The spans of one trace, with lookups by relation.
struct Trace<'a> {
    spans: Vec<&'a Span>,
    by_id: HashMap<&'a str, &'a Span>,
}

impl<'a> Trace<'a> {
    fn new(all: &'a [Span], trace_id: &str) -> Self {
        let spans: Vec<&Span> = all.iter().filter(|s| s.trace_id == trace_id).collect();
        let by_id = spans.iter().map(|s| (s.span_id.as_str(), *s)).collect();
        Self { spans, by_id }
    }

    fn find(&self, service: &str, kind: i32, name: &str) -> &'a Span {
        self.spans
            .iter()
            .find(|s| s.service_name == service && s.kind == kind && s.name == name)
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "no {service} span kind {kind} named {name:?} in:\n{}",
                    self.describe()
                )
            })
    }

    fn parent(&self, span: &Span) -> &'a Span {
        self.by_id
            .get(span.parent_span_id.as_str())
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "parent of {} ({}) not in the trace:\n{}",
                    span.name,
                    span.service_name,
                    self.describe()
                )
            })
    }

    fn descends_from(&self, span: &Span, ancestor: &Span) -> bool {
        let mut current = span;
        while let Some(parent) = self.by_id.get(current.parent_span_id.as_str()) {
            if parent.span_id == ancestor.span_id {
                return true;
            }
            current = parent;
        }
        false
    }

    fn describe(&self) -> String {
        self.spans
            .iter()
            .map(|s| {
                format!(
                    "  {} {} kind={} id={} parent={}",
                    s.service_name, s.name, s.kind, s.span_id, s.parent_span_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn items() -> Value {
    json!([{ "sku": "sku-espresso", "quantity": 2 }, { "sku": "sku-filter", "quantity": 1 }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_from_the_gateway_to_the_consumer() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    let (status, traceresponse, order) = stack.place_order("e2e-child", items()).await?;
    assert_eq!(status, 201, "{order}");
    let traceresponse = traceresponse.expect("the gateway answers with traceresponse");
    let trace_id = trace_id_of(&traceresponse);
    let order_id = order["id"].as_str().expect("order id").to_owned();

    // The order reaches the fulfilled status (Kafka -> service-c -> service-a).
    let fulfilled = stack
        .wait_for_status(&order_id, "fulfilled", Duration::from_secs(30))
        .await?;
    assert!(fulfilled["fulfilled_at"].is_string());

    // Wait for every span this test looks at: they end (and are exported) at different
    // times, the consumer span last.
    let expected: [(&str, i32); 6] = [
        ("api-gateway", SERVER),
        ("service-a", SERVER),
        ("service-b", PRODUCER),
        ("service-c", CONSUMER),
        ("service-c", CLIENT),
        ("service-d", SERVER),
    ];
    let all = stack
        .otlp
        .wait_for_spans(Duration::from_secs(30), |spans| {
            let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
            in_trace
                .iter()
                .any(|s| s.name == "POST /orders/{id}/fulfil")
                && expected.iter().all(|(service, kind)| {
                    in_trace
                        .iter()
                        .any(|s| s.service_name == *service && s.kind == *kind)
                })
        })
        .await;
    let trace = Trace::new(&all, &trace_id);

    // api-gateway: the root, and the span traceresponse names.
    let gateway = trace.find("api-gateway", SERVER, "POST /api/orders");
    assert!(
        gateway.parent_span_id.is_empty(),
        "the gateway span is the root"
    );
    assert_eq!(
        traceresponse,
        format!("00-{trace_id}-{}-01", gateway.span_id)
    );
    assert_eq!(gateway.attributes["http.route"], "/api/orders");
    assert_eq!(gateway.attributes["http.response.status_code"], "201");

    // service-a, called by the gateway's client span.
    let orders = trace.find("service-a", SERVER, "POST /orders");
    let gateway_client = trace.parent(orders);
    assert_eq!(
        (gateway_client.service_name.as_str(), gateway_client.kind),
        ("api-gateway", CLIENT)
    );
    assert_eq!(trace.parent(gateway_client).span_id, gateway.span_id);

    // service-d, called by service-a.
    let catalog = trace.find("service-d", SERVER, "POST /stock/check");
    let catalog_client = trace.parent(catalog);
    assert_eq!(
        (
            catalog_client.service_name.as_str(),
            trace.parent(catalog_client).span_id.as_str()
        ),
        ("service-a", orders.span_id.as_str())
    );

    // The third party is not instrumented: only service-a's client span shows it.
    assert!(
        trace.spans.iter().any(|s| s.service_name == "service-a"
            && s.kind == CLIENT
            && s.attributes
                .get("url.full")
                .is_some_and(|u| u.ends_with("/fraud-check"))
            && s.parent_span_id == orders.span_id),
        "no client span for the third-party call:\n{}",
        trace.describe()
    );

    // Database CLIENT spans with the semantic conventions, under the request.
    for (operation, table) in [
        ("INSERT", "orders"),
        ("INSERT", "order_items"),
        ("INSERT", "outbox"),
    ] {
        let db = trace.find("service-a", CLIENT, &format!("{operation} {table}"));
        assert_eq!(db.attributes["db.system.name"], "postgresql");
        assert_eq!(db.attributes["db.operation.name"], operation);
        assert_eq!(db.attributes["db.collection.name"], table);
        assert!(
            db.attributes["db.query.text"].contains('$'),
            "parameterised: {}",
            db.attributes["db.query.text"]
        );
        assert!(trace.descends_from(db, orders));
    }

    // service-b (manual): server span under service-a's client span, producer span under it.
    let events = trace.find("service-b", SERVER, "POST /events");
    let events_client = trace.parent(events);
    assert_eq!(
        (events_client.service_name.as_str(), events_client.kind),
        ("service-a", CLIENT)
    );
    assert!(trace.descends_from(events_client, orders));
    let producer = trace.find("service-b", PRODUCER, &format!("send {}", stack.topic));
    assert_eq!(producer.parent_span_id, events.span_id);
    assert_eq!(producer.attributes["messaging.system"], "kafka");
    assert_eq!(
        producer.attributes["messaging.destination.name"],
        stack.topic
    );
    assert_eq!(producer.attributes["messaging.kafka.message.key"], order_id);
    assert!(producer.attributes.contains_key("messaging.kafka.offset"));
    assert!(
        producer
            .attributes
            .contains_key("messaging.destination.partition.id")
    );

    // service-c (manual): the consumer span is the producer span's child (KAFKA_TRACE_MODE=child).
    let consumer = trace.find("service-c", CONSUMER, &format!("process {}", stack.topic));
    assert_eq!(consumer.parent_span_id, producer.span_id);
    assert!(consumer.attributes["messaging.consumer.group.name"].starts_with("service-c"));
    assert_eq!(consumer.attributes["demo.message.outcome"], "fulfilled");
    let dedup = trace.find("service-c", CLIENT, "INSERT processed_events");
    assert_eq!(dedup.parent_span_id, consumer.span_id);
    let fulfil = trace.find("service-a", SERVER, "POST /orders/{id}/fulfil");
    assert!(
        trace.descends_from(fulfil, consumer),
        "service-c's call to service-a stays in the trace"
    );

    // Logs: every service wrote lines with this trace id; every line naming the order carries it.
    for service in [
        "api-gateway",
        "service-a",
        "service-b",
        "service-c",
        "service-d",
    ] {
        let lines = stack.json_logs(service);
        assert!(
            lines.iter().any(|l| l["trace_id"] == trace_id.as_str()),
            "{service} wrote no log line with the trace id:\n{}",
            stack.log_tail(service)
        );
        for line in lines.iter().filter(|l| l.to_string().contains(&order_id)) {
            assert_eq!(
                line["trace_id"],
                trace_id.as_str(),
                "{service}: a line about the order lacks its trace id: {line}"
            );
        }
    }
    let services_of = |logs: &[otlp_receiver::LogRecord]| {
        logs.iter()
            .filter(|l| l.trace_id == trace_id)
            .map(|l| l.service_name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let otlp_logs = stack
        .otlp
        .wait_for_logs(Duration::from_secs(10), |logs| services_of(logs).len() == 5)
        .await;
    let services_with_logs: std::collections::BTreeSet<_> = otlp_logs
        .iter()
        .filter(|l| l.trace_id == trace_id)
        .map(|l| l.service_name.clone())
        .collect();
    assert_eq!(
        services_with_logs.len(),
        5,
        "OTLP log records with the trace id came from {services_with_logs:?}"
    );

    // The gateway's /metrics carries an exemplar for this trace, and the span is marked.
    let metrics = stack
        .http()
        .get(format!("{}/metrics", stack.url("api-gateway")))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_bucket")
                && l.contains(r#"http_route="/api/orders""#)
                && l.contains(&format!(r#"trace_id="{trace_id}""#))
        ),
        "no exemplar for {trace_id} on the gateway's /metrics:\n{metrics}"
    );
    assert_eq!(
        gateway.attributes.get("demo.exemplar").map(String::as_str),
        Some("true")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_starts_a_new_trace_that_links_to_the_producer() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions {
        kafka_trace_mode: Some("link"),
        ..Default::default()
    })
    .await?;
    let (status, traceresponse, order) = stack.place_order("e2e-link", items()).await?;
    assert_eq!(status, 201, "{order}");
    let trace_id = trace_id_of(&traceresponse.expect("traceresponse"));
    let order_id = order["id"].as_str().expect("order id").to_owned();
    stack
        .wait_for_status(&order_id, "fulfilled", Duration::from_secs(30))
        .await?;

    let topic = stack.topic.clone();
    let spans = stack
        .otlp
        .wait_for_spans(Duration::from_secs(30), |spans| {
            // The linked consumer span, and the fulfilment call in its new trace.
            let linked = spans
                .iter()
                .find(|s| s.kind == CONSUMER && s.links.iter().any(|(t, _)| *t == trace_id));
            linked.is_some_and(|c| {
                spans
                    .iter()
                    .any(|s| s.trace_id == c.trace_id && s.name == "POST /orders/{id}/fulfil")
            }) && spans
                .iter()
                .any(|s| s.kind == PRODUCER && s.trace_id == trace_id)
        })
        .await;
    let producer = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == PRODUCER && s.name == format!("send {topic}"))
        .expect("producer span in the request's trace");
    let consumer = spans
        .iter()
        .find(|s| {
            s.service_name == "service-c"
                && s.kind == CONSUMER
                && s.links.iter().any(|(t, _)| *t == trace_id)
        })
        .expect("a consumer span linking to the request's trace");
    assert_ne!(consumer.trace_id, trace_id, "link mode starts a new trace");
    assert!(
        consumer.parent_span_id.is_empty(),
        "the consumer span is a root"
    );
    assert_eq!(
        consumer.links,
        vec![(trace_id.clone(), producer.span_id.clone())]
    );
    // The rest of the processing (the fulfilment call) lives in the consumer's new trace.
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id == consumer.trace_id && s.name == "POST /orders/{id}/fulfil")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_service_b_down_orders_succeed_and_every_event_arrives_once() -> anyhow::Result<()> {
    let mut stack = Stack::start(StackOptions::default()).await?;
    stack.stop("service-b").await?;

    let mut orders = Vec::new();
    for i in 0..6 {
        let (status, traceresponse, order) = stack
            .place_order(&format!("e2e-outage-{i}"), items())
            .await?;
        assert_eq!(
            status, 201,
            "an order must succeed while service-b is down: {order}"
        );
        orders.push((
            order["id"].as_str().unwrap().to_owned(),
            trace_id_of(&traceresponse.unwrap()),
        ));
    }
    let still_waiting: Value = stack
        .http()
        .get(format!(
            "{}/api/orders/{}",
            stack.url("api-gateway"),
            orders[0].0
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(still_waiting["status"], "accepted");

    // The breaker opened: a log line, and an event on a service-a span.
    assert!(
        stack
            .json_logs("service-a")
            .iter()
            .any(|l| l["message"] == "circuit breaker state changed"
                && l["fields"]["breaker.to"] == "open"),
        "no breaker log line:\n{}",
        stack.log_tail("service-a")
    );
    stack
        .otlp
        .wait_for_spans(Duration::from_secs(10), |spans| {
            spans.iter().any(|s| {
                s.service_name == "service-a"
                    && s.events.iter().any(|(name, attrs)| {
                        name == "circuit breaker state changed"
                            && attrs.get("breaker.to").map(String::as_str) == Some("open")
                    })
            })
        })
        .await
        .iter()
        .find(|s| {
            s.events
                .iter()
                .any(|(name, _)| name == "circuit breaker state changed")
        })
        .expect("the breaker's transition is a span event");

    stack.restart("service-b").await?;
    for (order_id, _) in &orders {
        stack
            .wait_for_status(order_id, "fulfilled", Duration::from_secs(60))
            .await?;
    }

    // Exactly once: one fulfilment per order, and the outbox is drained.
    // service-c logs "order fulfilled" just after service-a answered, so the status
    // can flip before the line is written: wait for a line per order, then count.
    let count_for = |lines: &[Value], order_id: &str| {
        lines
            .iter()
            .filter(|l| l["message"] == "order fulfilled" && l["fields"]["order_id"] == order_id)
            .count()
    };
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = stack.json_logs("service-c");
        if orders.iter().all(|(id, _)| count_for(&lines, id) > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (order_id, _) in &orders {
        let count = count_for(&lines, order_id);
        assert_eq!(count, 1, "order {order_id} fulfilled {count} times");
    }
    let pool = sqlx::PgPool::connect(&stack.database_url).await?;
    let ids: Vec<uuid::Uuid> = orders.iter().map(|(id, _)| id.parse().unwrap()).collect();
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE order_id = ANY($1) AND delivered_at IS NULL",
    )
    .bind(&ids)
    .fetch_one(&pool)
    .await?;
    assert_eq!(pending, 0, "the outbox is drained");

    // Relayed events start new traces that link back to the request that created them.
    let spans = stack
        .otlp
        .wait_for_spans(Duration::from_secs(10), |spans| {
            orders.iter().all(|(_, trace)| {
                spans
                    .iter()
                    .any(|s| s.name == "outbox relay" && s.links.iter().any(|(t, _)| t == trace))
            })
        })
        .await;
    for (order_id, trace) in &orders {
        let relay = spans
            .iter()
            .find(|s| s.name == "outbox relay" && s.links.iter().any(|(t, _)| t == trace))
            .unwrap_or_else(|| panic!("no relay span links to the trace of order {order_id}"));
        assert_ne!(&relay.trace_id, trace);
    }
    // And the breaker's metrics went out over OTLP.
    assert!(
        stack
            .otlp
            .metrics()
            .iter()
            .any(|m| m.service_name == "service-a" && m.name == "circuit_breaker.transitions")
    );
    Ok(())
}
