//! Logs on stdout: one JSON object per line carrying the trace context.
//!
//! Every record written inside a span has top-level `trace_id` and `span_id`, so a log
//! line found in Loki (or with `grep`) leads straight to its trace. tracing-opentelemetry
//! makes the span's OpenTelemetry context current when a tracing span is entered, so the
//! formatter reads the ids from `Context::current()`. Fields named like secrets are
//! written as `[REDACTED]`.

use crate::redaction::{REDACTED, is_secret_name};
use opentelemetry::trace::TraceContextExt;
use std::{fmt, fmt::Write as _, ops::Range};
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
/// `{"fields":{..},"level","message","span","span_id","target","timestamp","trace_id"}`
/// (keys in this order, fields sorted by name, as serde_json's map wrote them).
///
/// The line is written straight into the layer's buffer: building a `serde_json::Map`
/// (a `String` per key and value, a tree insert per field) and serializing it was most of
/// the access-log line's cost.
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
        // Sized for a typical line, so that recording the fields seldom grows them.
        let mut fields = FieldCollector {
            json: String::with_capacity(256),
            message: None,
            fields: Vec::with_capacity(metadata.fields().len()),
        };
        event.record(&mut fields);
        fields.sort();

        writer.write_char('{')?;
        if !fields.fields.is_empty() {
            writer.write_str("\"fields\":{")?;
            for (i, (name, value, _)) in fields.fields.iter().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                write_json_str(&mut writer, name)?;
                writer.write_char(':')?;
                writer.write_str(&fields.json[value.clone()])?;
            }
            writer.write_str("},")?;
        }
        writer.write_str("\"level\":")?;
        write_json_str(&mut writer, metadata.level().as_str())?;
        // The SDK's own diagnostics carry a `name` instead of a message.
        writer.write_str(",\"message\":")?;
        match fields.message() {
            Some(message) => writer.write_str(message)?,
            None => writer.write_str("\"\"")?,
        }
        if let Some(current) = ctx.lookup_current() {
            writer.write_str(",\"span\":")?;
            write_json_str(&mut writer, current.name())?;
        }
        let ids = opentelemetry::Context::map_current(|cx| {
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
        });
        if let Some((_, span_id)) = ids {
            write!(writer, ",\"span_id\":\"{span_id}\"")?;
        }
        writer.write_str(",\"target\":")?;
        write_json_str(&mut writer, metadata.target())?;
        // The timestamp is digits, `-`, `:`, `.`, `T` and `Z`: nothing to escape.
        writer.write_str(",\"timestamp\":\"")?;
        write_timestamp(&mut writer, std::time::SystemTime::now())?;
        writer.write_char('"')?;
        if let Some((trace_id, _)) = ids {
            write!(writer, ",\"trace_id\":\"{trace_id}\"")?;
        }
        writer.write_str("}\n")
    }
}

/// Writes `now` as tracing-subscriber's `SystemTime` does (RFC 3339, UTC, microseconds:
/// `2026-11-29T18:28:23.123456Z`), with the digits put in place by hand: its `write!` with
/// padded numbers was a sixth of the line's cost.
fn write_timestamp(out: &mut Writer<'_>, now: std::time::SystemTime) -> fmt::Result {
    let since_epoch = match now.duration_since(std::time::UNIX_EPOCH) {
        // Years past 9999 print differently; such a clock gets tracing-subscriber's text.
        Ok(since_epoch) if since_epoch.as_secs() < 253_402_300_800 => since_epoch,
        _ => return SystemTime.format_time(out),
    };
    let (days, second_of_day) = (
        since_epoch.as_secs() / 86_400,
        since_epoch.as_secs() % 86_400,
    );
    // Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day number.
    let days = days + 719_468;
    let (era, day_of_era) = (days / 146_097, days % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);

    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |end: usize, width: usize, mut value: u64| {
        for digit in text[end - width..end].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(4, 4, year);
    put(7, 2, month);
    put(10, 2, day);
    put(13, 2, second_of_day / 3_600);
    put(16, 2, second_of_day / 60 % 60);
    put(19, 2, second_of_day % 60);
    put(26, 6, u64::from(since_epoch.subsec_micros()));
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// Writes `value` as a JSON string, escaped exactly as serde_json escapes it.
fn write_json_str(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    JsonEscaped(&mut *out).write_str(value)?;
    out.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string (`"`, `\` and the
/// control characters), as serde_json does; `Debug` values are formatted through it, so they
/// need no `String` of their own.
struct JsonEscaped<W>(W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
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

/// An event's fields, each value already written as JSON text.
struct FieldCollector {
    /// Every value as JSON text, one after the other.
    json: String,
    /// `message`, as a JSON string.
    message: Option<Range<usize>>,
    /// The other fields: name, value (a range of `json`), and whether the value is a string.
    fields: Vec<(&'static str, Range<usize>, bool)>,
}

impl FieldCollector {
    /// Appends one field's value, written by `write` as JSON text.
    fn insert(
        &mut self,
        field: &Field,
        is_string: bool,
        write: impl FnOnce(&mut String) -> fmt::Result,
    ) {
        let name = field.name();
        let start = self.json.len();
        if name == "message" {
            // A message is always a string; a number or a bool as message is its JSON text.
            if is_string {
                let _ = write(&mut self.json);
            } else {
                self.json.push('"');
                let _ = write(&mut self.json);
                self.json.push('"');
            }
            self.message = Some(start..self.json.len());
        } else if name.starts_with("log.") {
            // tracing-log's metadata fields (log.target, log.file...) add noise only.
        } else if is_secret_name(name) {
            let _ = write_json_str(&mut self.json, REDACTED);
            self.fields.push((name, start..self.json.len(), true));
        } else {
            let _ = write(&mut self.json);
            self.fields.push((name, start..self.json.len(), is_string));
        }
    }

    /// Sorts the fields by name; of a name recorded twice the last value stays, as in a map.
    fn sort(&mut self) {
        self.fields.sort_by_key(|(name, ..)| *name);
        self.fields.reverse();
        self.fields.dedup_by_key(|(name, ..)| *name);
        self.fields.reverse();
    }

    /// The message, or a string `name` field (the SDK's diagnostics), as JSON text.
    fn message(&self) -> Option<&str> {
        let range = self.message.clone().or_else(|| {
            self.fields
                .iter()
                .find(|(name, _, is_string)| *name == "name" && *is_string)
                .map(|(_, value, _)| value.clone())
        })?;
        Some(&self.json[range])
    }
}

impl tracing::field::Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, true, |out| {
            out.push('"');
            write!(JsonEscaped(&mut *out), "{value:?}")?;
            out.push('"');
            Ok(())
        });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, true, |out| write_json_str(out, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, false, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, false, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's float text (shortest round trip); not finite is `null`, as before.
        self.insert(field, false, |out| {
            match serde_json::Number::from_f64(value) {
                Some(number) => write!(out, "{number}"),
                None => out.write_str("null"),
            }
        });
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, false, |out| write!(out, "{value}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, true, |out| {
            out.push('"');
            write!(JsonEscaped(&mut *out), "{value}")?;
            out.push('"');
            Ok(())
        });
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

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut text = String::new();
            let time = std::time::UNIX_EPOCH + std::time::Duration::new(secs, micros * 1_000);
            write_timestamp(&mut Writer::new(&mut text), time).unwrap();
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(951_868_799, 999_999), "2000-02-29T23:59:59.999999Z");
        assert_eq!(at(1_709_164_800, 250_000), "2024-02-29T00:00:00.250000Z");
        assert_eq!(at(4_107_542_399, 123_456), "2100-02-28T23:59:59.123456Z");
        assert_eq!(at(1_798_761_599, 42), "2026-12-31T23:59:59.000042Z");
        assert_eq!(at(253_402_300_799, 999_999), "9999-12-31T23:59:59.999999Z");
        // The same text as tracing-subscriber's, to the minute (its clock is read later).
        let mut theirs = String::new();
        let ours = at(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            0,
        );
        SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        assert_eq!(ours.len(), theirs.len());
        assert!(ours[..16] == theirs[..16] || ours[14..16] != theirs[14..16]);
    }

    /// Each line is byte for byte what serde_json writes for the same object (sorted keys,
    /// its escaping and float text), as the format's first version built it.
    #[test]
    fn lines_are_what_serde_json_writes_for_the_same_values() {
        #[derive(Debug)]
        struct Odd;
        let error = std::io::Error::other("disk \"full\"\n");
        let buffer = CapturedLogs::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLogFormat)
                .with_writer(buffer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                text = "quote \" backslash \\ tab \t nul \u{0} bell \u{7} del \u{7f} é ✓",
                debug = ?vec!["a\nb"],
                odd = ?Odd,
                negative = -7_i64,
                large = u64::MAX,
                small = 0.1,
                huge = 1e300,
                tiny = 1.5e-9,
                whole = 2.0,
                nan = f64::NAN,
                flag = false,
                error = &error as &(dyn std::error::Error + 'static),
                api_token = "s3cr3t",
                "message \"{}\"\r\n",
                "x"
            );
            tracing::warn!(message = 42, b = 1, a = 2);
            tracing::error!(name = "BatchSpanProcessor.ExportError", code = 3);
            tracing::debug!(name = 7);
        });
        let text = buffer.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        for line in &lines {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(&serde_json::to_string(&value).unwrap(), line);
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["message"], "message \"x\"\r\n");
        assert_eq!(
            first["fields"]["text"],
            "quote \" backslash \\ tab \t nul \u{0} bell \u{7} del \u{7f} é ✓"
        );
        assert_eq!(first["fields"]["debug"], "[\"a\\nb\"]");
        assert_eq!(first["fields"]["odd"], "Odd");
        assert_eq!(first["fields"]["large"], u64::MAX);
        assert_eq!(first["fields"]["nan"], serde_json::Value::Null);
        assert_eq!(first["fields"]["error"], "disk \"full\"\n");
        assert_eq!(first["fields"]["api_token"], REDACTED);
        assert!(!text.contains("s3cr3t"));
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["message"], "42");
        assert!(lines[1].starts_with(r#"{"fields":{"a":2,"b":1},"level":"WARN","message":"42","#));
        let third: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(third["message"], "BatchSpanProcessor.ExportError");
        let fourth: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
        assert_eq!(fourth["message"], "");
    }
}
