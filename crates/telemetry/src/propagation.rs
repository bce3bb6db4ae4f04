//! W3C context propagation: which propagators run, and carriers for HTTP headers.
//!
//! `OTEL_PROPAGATORS` is not read by any opentelemetry crate, so [`install`] builds the
//! global propagator from it. Trace Context is parsed strictly: the SDK's parser accepts
//! short ids and a leading `+`, which the W3C spec says must start a new trace instead.

use crate::config::PropagatorKind;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{
        Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
        text_map_propagator::FieldIter,
    },
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// Installs the global propagator for the kinds named in `OTEL_PROPAGATORS`.
pub fn install(kinds: &[PropagatorKind]) {
    opentelemetry::global::set_text_map_propagator(build(kinds));
}

/// Builds a propagator for `kinds` (empty means `none`: nothing is injected or extracted).
pub fn build(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = kinds
        .iter()
        .map(|kind| -> Box<dyn TextMapPropagator + Send + Sync> {
            match kind {
                PropagatorKind::TraceContext => Box::new(StrictTraceContextPropagator::default()),
                PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

/// Extracts the remote context from incoming headers with the global propagator.
///
/// A missing or malformed `traceparent` yields a context without a remote span, so the
/// next span starts a new trace.
pub fn extract_from_headers(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Injects `cx` into outgoing headers with the global propagator.
pub fn inject_into_headers(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut HeaderInjector(headers))
    });
}

/// Reads propagation fields from an `http::HeaderMap`.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes propagation fields into an `http::HeaderMap`.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// W3C Trace Context with the header shape checked as the spec requires.
#[derive(Debug, Default)]
pub struct StrictTraceContextPropagator {
    inner: TraceContextPropagator,
}

/// True when `value` is a `traceparent` the W3C Trace Context spec accepts.
///
/// Rules: `version-traceid-parentid-flags`, each part lowercase hex of length 2, 32, 16
/// and 2; version `ff` is invalid; version `00` has exactly four parts, a later version may
/// append `-`-separated fields; all-zero trace or parent ids are invalid.
pub fn is_valid_traceparent(value: &str) -> bool {
    let is_lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest_is_empty = parts.next().is_none();
    is_lower_hex(version, 2)
        && version != "ff"
        && (rest_is_empty || version != "00")
        && is_lower_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && is_lower_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && is_lower_hex(flags, 2)
}

/// Hides a malformed `traceparent` from the SDK's lenient parser.
struct ValidatedExtractor<'a>(&'a dyn Extractor);

impl Extractor for ValidatedExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key)?;
        if key.eq_ignore_ascii_case("traceparent") && !is_valid_traceparent(value.trim()) {
            return None;
        }
        Some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

impl TextMapPropagator for StrictTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inner.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.inner
            .extract_with_context(cx, &ValidatedExtractor(extractor))
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::TraceContextExt;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn extract(traceparent: &str) -> Context {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_str(traceparent).unwrap());
        build(&[PropagatorKind::TraceContext]).extract(&HeaderExtractor(&headers))
    }

    #[test]
    fn a_valid_traceparent_continues_the_remote_trace() {
        let cx = extract(VALID);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_future_version_may_carry_extra_fields() {
        let cx = extract("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra");
        assert!(cx.span().span_context().is_valid());
    }

    /// Every malformed case from the W3C Trace Context spec starts a new trace: the
    /// extracted context has no valid remote span.
    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        let cases = [
            (
                "invalid version ff",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "all-zero trace id",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            (
                "all-zero parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            ),
            (
                "short trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            ),
            (
                "long trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01",
            ),
            (
                "short parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            ),
            (
                "one-digit version",
                "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "uppercase trace id",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            ),
            (
                "uppercase parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            ),
            (
                "uppercase version",
                "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "one-digit flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            ),
            (
                "non-hex flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            ),
            (
                "three-digit flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
            ),
            (
                "plus sign in id",
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "version 00 with extra field",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            ),
            (
                "missing flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            ),
            ("garbage", "hello"),
            ("empty", ""),
        ];
        for (name, header) in cases {
            assert!(!is_valid_traceparent(header), "{name} passed validation");
            let cx = extract(header);
            assert!(
                !cx.span().span_context().is_valid(),
                "{name}: a malformed traceparent must not continue a trace"
            );
        }
    }

    #[test]
    fn inject_writes_traceparent_tracestate_and_baggage() {
        let remote = extract(VALID);
        let cx = remote.with_baggage(vec![opentelemetry::KeyValue::new("tenant", "acme")]);
        let mut headers = HeaderMap::new();
        build(&[PropagatorKind::TraceContext, PropagatorKind::Baggage])
            .inject_context(&cx, &mut HeaderInjector(&mut headers));
        assert_eq!(headers["traceparent"], VALID);
        assert!(headers.contains_key("tracestate"));
        assert_eq!(headers["baggage"], "tenant=acme");
    }

    #[test]
    fn propagators_none_injects_nothing() {
        let cx = extract(VALID);
        let mut headers = HeaderMap::new();
        build(&[]).inject_context(&cx, &mut HeaderInjector(&mut headers));
        assert!(headers.is_empty());
    }
}
