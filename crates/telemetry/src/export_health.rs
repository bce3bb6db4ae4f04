//! What the OTLP exporters could not deliver, counted: with the collector down, spans
//! and log records are dropped (the SDK 0.33 counts neither in a metric), and the
//! counter `telemetry.export.dropped` (attribute `signal`: `traces`, `logs`) says how
//! many once metrics reach a backend again. Metrics themselves are cumulative: a missed
//! export is caught up by the next one.

use opentelemetry::{KeyValue, metrics::Meter};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{LogBatch, LogExporter},
    trace::{SpanData, SpanExporter},
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Items in batches whose export failed, per signal.
#[derive(Debug, Default)]
pub(crate) struct Dropped {
    spans: AtomicU64,
    logs: AtomicU64,
}

impl Dropped {
    /// Registers `telemetry.export.dropped` on `meter`.
    pub(crate) fn register(self: &Arc<Self>, meter: &Meter) {
        let dropped = self.clone();
        meter
            .u64_observable_counter("telemetry.export.dropped")
            .with_description(
                "Spans and log records the OTLP exporter could not deliver (collector down or refusing), by signal.",
            )
            .with_callback(move |counter| {
                counter.observe(
                    dropped.spans.load(Ordering::Relaxed),
                    &[KeyValue::new("signal", "traces")],
                );
                counter.observe(
                    dropped.logs.load(Ordering::Relaxed),
                    &[KeyValue::new("signal", "logs")],
                );
            })
            .build();
    }
}

/// A span exporter that counts the spans of every batch it failed to export.
#[derive(Debug)]
pub(crate) struct CountingSpanExporter<E> {
    pub(crate) inner: E,
    pub(crate) dropped: Arc<Dropped>,
}

impl<E: SpanExporter> SpanExporter for CountingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        if result.is_err() {
            self.dropped.spans.fetch_add(spans, Ordering::Relaxed);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A log exporter that counts the records of every batch it failed to export.
#[derive(Debug)]
pub(crate) struct CountingLogExporter<E> {
    pub(crate) inner: E,
    pub(crate) dropped: Arc<Dropped>,
}

impl<E: LogExporter> LogExporter for CountingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        if result.is_err() {
            self.dropped.logs.fetch_add(records, Ordering::Relaxed);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;

    #[derive(Debug)]
    struct Failing(bool);

    impl SpanExporter for Failing {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.0 {
                Err(OTelSdkError::InternalFailure("collector down".into()))
            } else {
                Ok(())
            }
        }
    }

    fn span() -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanKind, Status};
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[tokio::test]
    async fn only_failed_batches_are_counted() {
        let dropped = Arc::new(Dropped::default());
        let ok = CountingSpanExporter {
            inner: Failing(false),
            dropped: dropped.clone(),
        };
        ok.export(vec![span(), span()]).await.unwrap();
        assert_eq!(dropped.spans.load(Ordering::Relaxed), 0);
        let down = CountingSpanExporter {
            inner: Failing(true),
            dropped: dropped.clone(),
        };
        assert!(down.export(vec![span(), span(), span()]).await.is_err());
        assert_eq!(dropped.spans.load(Ordering::Relaxed), 3);
    }
}
