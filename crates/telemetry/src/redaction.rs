//! Keeps secrets out of telemetry.
//!
//! Three places can leak a credential: a captured header, a query string, and a log or
//! attribute field named like a secret. Every instrumentation path in this crate goes
//! through these functions, and [`RedactingSpanProcessor`] checks every finished span once
//! more before export, so spans created by hand in the manual services are covered too.

use opentelemetry::{
    Context, InstrumentationScope, KeyValue, Value,
    logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider},
    trace::{Span, SpanData, SpanProcessor},
};
use std::time::Duration;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Headers whose values are credentials.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-admin-token",
];

/// True for headers whose value must never be recorded.
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Substrings that mark a query parameter, field or attribute name as secret, grouped by
/// first letter so that a name is scanned once.
fn secret_parts_starting_with(letter: u8) -> &'static [&'static str] {
    match letter {
        b'a' => &["api_key", "apikey", "api-key", "auth"],
        b'c' => &["credential", "cookie"],
        b'p' => &["password", "passwd", "private_key"],
        b's' => &["secret", "session", "signature"],
        b't' => &["token"],
        _ => &[],
    }
}

/// True for a query parameter, log field or attribute key named like a secret.
///
/// It runs on every attribute of every span, log record and log line, so it allocates
/// nothing and scans the name once, comparing only the parts that start with the letter
/// at hand: lowercasing the name and a substring search per part were a fifth of a
/// request's instrumentation time.
pub fn is_secret_name(name: &str) -> bool {
    // `http.request.header.authorization` and friends end in the header name. Each
    // sensitive header name contains a secret part, so the parts cover them too (a test
    // checks it).
    let name = name.as_bytes();
    let last = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => &name[dot + 1..],
        None => name,
    };
    (0..last.len()).any(|start| {
        let rest = &last[start..];
        secret_parts_starting_with(rest[0].to_ascii_lowercase())
            .iter()
            .any(|part| {
                rest.get(..part.len())
                    .is_some_and(|candidate| candidate.eq_ignore_ascii_case(part.as_bytes()))
            })
    })
}

/// Returns the query string with the value of every secret-named parameter replaced.
///
/// Parameter names and order are kept so the query stays useful for debugging.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&percent_decode_lossy(name)) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Redacts the query part and any user-info of a full URL.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = strip_userinfo(before_query);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    out
}

fn strip_userinfo(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts one attribute in place; returns true if it changed.
pub fn redact_attribute(kv: &mut KeyValue) -> bool {
    let key = kv.key.as_str();
    if is_secret_name(key) {
        kv.value = Value::from(REDACTED);
        return true;
    }
    if matches!(key, "url.full" | "url.query" | "http.url" | "http.target")
        && let Value::String(s) = &kv.value
    {
        let redacted = if key == "url.query" {
            redact_query(s.as_str())
        } else {
            redact_url(s.as_str())
        };
        if redacted != s.as_str() {
            kv.value = Value::from(redacted);
            return true;
        }
    }
    false
}

/// A span processor that redacts secret attributes before handing the span on.
///
/// It wraps the batch processor, so it runs on the thread that ends the span and costs
/// one pass over the attributes.
#[derive(Debug)]
pub struct RedactingSpanProcessor<P> {
    inner: P,
}

impl<P> RedactingSpanProcessor<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }
}

impl<P: SpanProcessor> SpanProcessor for RedactingSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        span.attributes.iter_mut().for_each(|kv| {
            redact_attribute(kv);
        });
        for event in span.events.events.iter_mut() {
            event.attributes.iter_mut().for_each(|kv| {
                redact_attribute(kv);
            });
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
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

    /// Every secret part, from the grouped lists.
    fn secret_name_parts() -> Vec<&'static str> {
        (0..=u8::MAX)
            .flat_map(|letter| secret_parts_starting_with(letter).iter().copied())
            .collect()
    }

    #[test]
    fn each_secret_part_is_listed_under_its_first_letter() {
        for letter in 0..=u8::MAX {
            for part in secret_parts_starting_with(letter) {
                assert_eq!(part.as_bytes()[0], letter, "{part}");
                assert_eq!(part, &part.to_ascii_lowercase());
            }
        }
        assert_eq!(secret_name_parts().len(), 13);
    }

    #[test]
    fn every_sensitive_header_is_a_secret_name() {
        for header in SENSITIVE_HEADERS {
            assert!(is_secret_name(header), "{header}");
            assert!(is_secret_name(&format!("http.request.header.{header}")));
        }
    }

    #[test]
    fn secret_names_are_found_anywhere_in_the_last_segment_in_any_case() {
        for name in [
            "password",
            "db.PassWord",
            "access_token",
            "X-Admin-Token",
            "user.session_id",
            "my_private_key_pem",
            "apikey",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "http.route",
            "http.response.status_code",
            "duration_ms",
            "token.count.total",
            "",
            "a",
            "tok",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    proptest::proptest! {
        /// The allocation-free scan answers as the first version did (lowercase, then a
        /// header match or a substring search per part).
        #[test]
        fn secret_name_scan_matches_the_plain_definition(
            name in "([a-zA-Z_.-]{0,6}(token|PASSWORD|Secret|api_key|auth|cookie|x)?){0,3}",
        ) {
            let lower = name.to_ascii_lowercase();
            let last = lower.rsplit('.').next().unwrap_or(&lower);
            let plain = is_sensitive_header(last)
                || secret_name_parts().iter().any(|part| last.contains(part));
            proptest::prop_assert_eq!(is_secret_name(&name), plain, "{}", name);
        }
    }

    #[test]
    fn sensitive_headers_are_matched_case_insensitively() {
        for h in [
            "Authorization",
            "COOKIE",
            "set-cookie",
            "Proxy-Authorization",
        ] {
            assert!(is_sensitive_header(h), "{h}");
        }
        assert!(!is_sensitive_header("content-type"));
    }

    #[test]
    fn secret_query_parameters_are_redacted_and_others_kept() {
        let q = "sku=abc&token=s3cr3t&Password=hunter2&api_key=k&page=2&access_token=t&x";
        let r = redact_query(q);
        assert_eq!(
            r,
            "sku=abc&token=[REDACTED]&Password=[REDACTED]&api_key=[REDACTED]&page=2&access_token=[REDACTED]&x"
        );
        for secret in ["s3cr3t", "hunter2", "=k&", "=t&"] {
            assert!(!r.contains(secret), "{secret} leaked in {r}");
        }
    }

    #[test]
    fn percent_encoded_parameter_names_are_still_caught() {
        assert_eq!(redact_query("api%5Fkey=zzz"), "api%5Fkey=[REDACTED]");
    }

    #[test]
    fn urls_lose_userinfo_and_secret_query_values() {
        assert_eq!(
            redact_url("http://user:pw@example.com:8080/a/b?token=x&q=1"),
            "http://[REDACTED]@example.com:8080/a/b?token=[REDACTED]&q=1"
        );
        assert_eq!(redact_url("http://example.com/a"), "http://example.com/a");
    }

    #[test]
    fn attributes_named_like_secrets_are_redacted() {
        let mut kv = KeyValue::new("http.request.header.authorization", "Bearer abc");
        assert!(redact_attribute(&mut kv));
        assert_eq!(kv.value.as_str(), REDACTED);
        let mut url = KeyValue::new("url.full", "http://h/p?password=pw");
        assert!(redact_attribute(&mut url));
        assert_eq!(url.value.as_str(), "http://h/p?password=[REDACTED]");
        let mut plain = KeyValue::new("http.route", "/orders/{id}");
        assert!(!redact_attribute(&mut plain));
    }
}

/// A log processor that masks secret-named attributes before handing the record on.
///
/// `SdkLogRecord` offers no way to change an attribute in place, so a record that holds a
/// secret (rare) is rebuilt from a blank one with the same fields; other records pass
/// through untouched.
#[derive(Debug)]
pub struct RedactingLogProcessor<P> {
    inner: P,
    blank: SdkLogRecord,
}

impl<P> RedactingLogProcessor<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        let blank = SdkLoggerProvider::builder()
            .build()
            .logger("redaction")
            .create_log_record();
        Self { inner, blank }
    }

    fn redacted_copy(&self, record: &SdkLogRecord) -> SdkLogRecord {
        let mut copy = self.blank.clone();
        if let Some(t) = record.timestamp() {
            copy.set_timestamp(t);
        }
        if let Some(t) = record.observed_timestamp() {
            copy.set_observed_timestamp(t);
        }
        if let Some(s) = record.severity_number() {
            copy.set_severity_number(s);
        }
        if let Some(s) = record.severity_text() {
            copy.set_severity_text(s);
        }
        if let Some(name) = record.event_name() {
            copy.set_event_name(name);
        }
        if let Some(target) = record.target() {
            copy.set_target(target.clone());
        }
        if let Some(body) = record.body() {
            copy.set_body(body.clone());
        }
        if let Some(tc) = record.trace_context() {
            copy.set_trace_context(tc.trace_id, tc.span_id, tc.trace_flags);
        }
        for (key, value) in record.attributes_iter() {
            if is_secret_name(key.as_str()) {
                copy.add_attribute(key.clone(), AnyValue::from(REDACTED));
            } else {
                copy.add_attribute(key.clone(), value.clone());
            }
        }
        copy
    }
}

impl<P: LogProcessor> LogProcessor for RedactingLogProcessor<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if record
            .attributes_iter()
            .any(|(key, _)| is_secret_name(key.as_str()))
        {
            *record = self.redacted_copy(record);
        }
        self.inner.emit(record, scope);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use opentelemetry::logs::Severity;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SimpleLogProcessor};

    #[test]
    fn secret_log_attributes_are_masked_and_the_rest_kept() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(RedactingLogProcessor::new(SimpleLogProcessor::new(
                exporter.clone(),
            )))
            .build();
        let logger = provider.logger("test");
        let mut record = logger.create_log_record();
        record.set_body("login".into());
        record.set_severity_number(Severity::Info);
        record.add_attribute("user", "ann");
        record.add_attribute("password", "hunter2");
        logger.emit(record);
        let logs = exporter.get_emitted_logs().unwrap();
        assert_eq!(logs.len(), 1);
        let attrs: Vec<(String, String)> = logs[0]
            .record
            .attributes_iter()
            .map(|(k, v)| (k.to_string(), format!("{v:?}")))
            .collect();
        assert!(attrs.iter().any(|(k, v)| k == "user" && v.contains("ann")));
        assert!(
            attrs
                .iter()
                .any(|(k, v)| k == "password" && v.contains(REDACTED))
        );
        assert!(!format!("{attrs:?}").contains("hunter2"));
        assert_eq!(logs[0].record.severity_number(), Some(Severity::Info));
    }
}
