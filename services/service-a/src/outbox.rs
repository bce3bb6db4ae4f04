//! The transactional outbox: an order's event is stored with the order, so a 201 never
//! loses its event, then handed to service-b at once; if that fails (service-b down,
//! breaker open), a background relay keeps trying.
//!
//! The event row carries the W3C trace context of the request that created it. The
//! relay delivers old events in a **new trace** whose span links back to that context
//! (a span that outlives its request should not stretch the request's trace).

use crate::{
    dependencies::{EventPublisher, PublishError},
    orders::OrderCreated,
    store::{OrderStore, StoredTraceContext},
};
use opentelemetry::{
    metrics::Gauge,
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
use std::{collections::HashMap, time::Duration};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Events relayed per round.
const RELAY_BATCH: i64 = 50;

/// The current request's trace context, to store with its event.
pub fn capture_trace_context() -> StoredTraceContext {
    let mut fields = Fields::default();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut fields));
    StoredTraceContext {
        traceparent: fields.0.remove("traceparent"),
        tracestate: fields.0.remove("tracestate").filter(|s| !s.is_empty()),
    }
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Delivers events and relays the ones left behind.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) store: OrderStore,
    pub(crate) publisher: EventPublisher,
    pub(crate) pending_gauge: Gauge<u64>,
}

impl Outbox {
    /// Tries to hand a freshly stored event to service-b now. Never fails the request:
    /// an event that cannot be delivered stays in the outbox for the relay.
    pub async fn deliver_now(&self, event: &OrderCreated) {
        match self.publisher.publish(event).await {
            Ok(()) => {
                let marked = async {
                    let mut conn = self.store.pool().acquire().await?;
                    self.store.mark_delivered(&mut conn, event.event_id).await
                };
                if let Err(error) = marked.await {
                    // Delivered but not marked: the relay sends it again and service-c
                    // drops the duplicate by event id.
                    tracing::warn!(error = %error, event_id = %event.event_id, "event delivered but not marked");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, event_id = %event.event_id, "event left in the outbox for the relay");
            }
        }
    }

    /// Relays every `interval` until `shutdown` is cancelled.
    pub async fn run_relay(
        self,
        interval: Duration,
        min_age: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.relay_once(min_age).await {
                tracing::warn!(error = %error, "outbox relay round failed");
            }
            if let Ok(pending) = self.store.count_pending().await {
                self.pending_gauge.record(pending.max(0) as u64, &[]);
            }
        }
    }

    /// One round: lock a batch of old undelivered events and try each.
    pub async fn relay_once(&self, min_age: Duration) -> Result<usize, sqlx::Error> {
        let mut tx = self.store.pool().begin().await?;
        let batch = self
            .store
            .lock_pending(&mut tx, min_age, RELAY_BATCH)
            .await?;
        let mut delivered = 0;
        for pending in batch {
            // A new trace per relayed event, linked to the request that created it.
            let span = tracing::info_span!(parent: None, "outbox relay", otel.kind = "producer", demo.event_id = %pending.event.event_id);
            if let Some(origin) = stored_span_context(&pending.trace) {
                span.add_link(origin);
            }
            let outcome = self
                .publisher
                .publish(&pending.event)
                .instrument(span.clone())
                .await;
            match outcome {
                Ok(()) => {
                    self.store
                        .mark_delivered(&mut tx, pending.event.event_id)
                        .instrument(span)
                        .await?;
                    delivered += 1;
                }
                Err(PublishError::BreakerOpen) => break,
                Err(PublishError::Failed(reason)) => {
                    self.store
                        .record_failure(&mut tx, pending.event.event_id, &reason)
                        .instrument(span)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        if delivered > 0 {
            tracing::info!(delivered, "outbox relay delivered events");
        }
        Ok(delivered)
    }
}

fn stored_span_context(trace: &StoredTraceContext) -> Option<opentelemetry::trace::SpanContext> {
    let mut fields = Fields::default();
    fields
        .0
        .insert("traceparent".into(), trace.traceparent.clone()?);
    if let Some(state) = &trace.tracestate {
        fields.0.insert("tracestate".into(), state.clone());
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&fields));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}
