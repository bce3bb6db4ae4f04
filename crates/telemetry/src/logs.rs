//! Logs on stdout: one JSON object per line carrying the trace context.
//!
//! Every record written inside a span has top-level `trace_id` and `span_id`, so a log
//! line found in Loki (or with `grep`) leads straight to its trace. tracing-opentelemetry
//! makes the span's OpenTelemetry context current when a tracing span is entered, so the
//! formatter reads the ids from `Context::current()`. Fields named like secrets are
//! written as `[REDACTED]`.

use crate::redaction::{REDACTED, is_secret_name};
use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use std::fmt;
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

/// Formats each event as one JSON line:
/// `{"timestamp","level","target","message","trace_id","span_id","span","fields":{..}}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLogFormat;

impl<S, N> FormatEvent<S, N> for JsonLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut fields = FieldCollector::default();
        event.record(&mut fields);

        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert("target".into(), Value::String(metadata.target().to_owned()));
        // The SDK's own diagnostics carry a `name` instead of a message.
        let message = fields
            .message
            .take()
            .or_else(|| match fields.values.get("name") {
                Some(Value::String(name)) => Some(name.clone()),
                _ => None,
            });
        line.insert("message".into(), Value::String(message.unwrap_or_default()));
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            line.insert("trace_id".into(), Value::String(sc.trace_id().to_string()));
            line.insert("span_id".into(), Value::String(sc.span_id().to_string()));
        }
        if let Some(current) = ctx.lookup_current() {
            line.insert("span".into(), Value::String(current.name().to_owned()));
        }
        if !fields.values.is_empty() {
            line.insert("fields".into(), Value::Object(fields.values));
        }
        let json = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{json}")
    }
}

/// The stdout layer's span-field formatter: formats nothing. tracing-subscriber's fmt
/// layer formats every span's fields into a string when the span opens and again on each
/// `record`, for event formats that print them; [`JsonLogFormat`] never does, and the server
/// span has sixteen fields: this was the largest single cost of a request's span.
#[derive(Debug, Default, Clone, Copy)]
pub struct SkipSpanFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for SkipSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _: Writer<'w>,
        _: R,
    ) -> fmt::Result {
        Ok(())
    }

    fn add_fields(
        &self,
        _: &'w mut tracing_subscriber::fmt::FormattedFields<Self>,
        _: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        Ok(())
    }
}

#[derive(Default)]
struct FieldCollector {
    message: Option<String>,
    values: Map<String, Value>,
}

impl FieldCollector {
    fn insert(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if name.starts_with("log.") {
            // tracing-log's metadata fields (log.target, log.file...) add noise only.
        } else if is_secret_name(name) {
            self.values
                .insert(name.to_owned(), Value::String(REDACTED.into()));
        } else {
            self.values.insert(name.to_owned(), value);
        }
    }
}

impl tracing::field::Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CapturedLogs;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn lines_inside_a_span_carry_its_trace_and_span_ids() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let buffer = CapturedLogs::default();
        let subscriber = tracing_subscriber::registry()
            .with(crate::span_bridge(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLogFormat)
                    .with_writer(buffer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            tracing::info_span!("work").in_scope(|| {
                tracing::warn!(order_id = 42, password = "hunter2", ok = true, "inside");
            });
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);

        let text = buffer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "outside");
        assert!(lines[0].get("trace_id").is_none());

        let inside = &lines[1];
        assert_eq!(inside["level"], "WARN");
        assert_eq!(inside["message"], "inside");
        assert_eq!(inside["span"], "work");
        assert_eq!(
            inside["trace_id"],
            spans[0].span_context.trace_id().to_string()
        );
        assert_eq!(
            inside["span_id"],
            spans[0].span_context.span_id().to_string()
        );
        assert_eq!(inside["fields"]["order_id"], 42);
        assert_eq!(inside["fields"]["ok"], true);
        assert_eq!(inside["fields"]["password"], REDACTED);
        assert!(!text.contains("hunter2"));
        assert!(inside["target"].as_str().unwrap().starts_with("telemetry"));
    }
}
