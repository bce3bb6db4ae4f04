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

/// Property tests (issue 11): whatever arrives in `traceparent`, `tracestate` and
/// `baggage`, extraction never panics, continues a trace only from a header the W3C
/// grammar accepts, and a context survives an inject/extract round trip.
#[cfg(test)]
mod properties {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use proptest::prelude::*;

    fn propagator() -> TextMapCompositePropagator {
        build(&[PropagatorKind::TraceContext, PropagatorKind::Baggage])
    }

    /// Headers from raw bytes; values `http` refuses never reach a service, so skip them.
    fn headers(fields: &[(&'static str, &[u8])]) -> Option<HeaderMap> {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_bytes(value).ok()?);
        }
        Some(map)
    }

    /// The spec's grammar, written independently of `is_valid_traceparent`.
    fn spec_accepts(value: &str) -> bool {
        let parts: Vec<&str> = value.split('-').collect();
        let hex = |s: &str, n: usize| {
            s.len() == n && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        };
        parts.len() >= 4
            && hex(parts[0], 2)
            && parts[0] != "ff"
            && (parts[0] != "00" || parts.len() == 4)
            && hex(parts[1], 32)
            && parts[1] != "0".repeat(32)
            && hex(parts[2], 16)
            && parts[2] != "0".repeat(16)
            && hex(parts[3], 2)
    }

    /// Near-misses of a valid header: each part drawn from hex-like alphabets and lengths
    /// around the right one, so most cases sit on the grammar's edges.
    fn traceparent_like() -> impl Strategy<Value = String> {
        let part = |len: usize| {
            prop_oneof![
                4 => proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap(),
                1 => proptest::string::string_regex(&format!("[0-9a-fA-Fg+ ]{{{},{}}}", len.saturating_sub(1), len + 1)).unwrap(),
                1 => Just("0".repeat(len)),
            ]
        };
        (
            prop_oneof![Just("00".to_owned()), Just("ff".to_owned()), part(2)],
            part(32),
            part(16),
            part(2),
            proptest::option::of("[-a-z0-9]{0,6}"),
        )
            .prop_map(|(v, t, p, f, extra)| match extra {
                Some(extra) => format!("{v}-{t}-{p}-{f}-{extra}"),
                None => format!("{v}-{t}-{p}-{f}"),
            })
    }

    #[test]
    fn surrounding_whitespace_is_not_part_of_the_header() {
        // Found by the property below: a trailing space made the reference reject a
        // header that the extractor (rightly, per HTTP) accepts.
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ";
        let map = headers(&[("traceparent", value.as_bytes())]).unwrap();
        let cx = propagator().extract(&HeaderExtractor(&map));
        assert!(cx.span().span_context().is_valid());
        assert!(spec_accepts(value.trim_matches([' ', '\t'])));
    }

    proptest! {
        #[test]
        fn only_headers_the_grammar_accepts_continue_a_trace(value in traceparent_like()) {
            prop_assert_eq!(is_valid_traceparent(&value), spec_accepts(&value), "{}", value);
            let Some(map) = headers(&[("traceparent", value.as_bytes())]) else { return Ok(()) };
            let cx = propagator().extract(&HeaderExtractor(&map));
            let sc = cx.span().span_context().clone();
            // An HTTP field value excludes surrounding whitespace (RFC 9110, 5.5), so the
            // extractor judges the value without it.
            let field_value = value.trim_matches([' ', '\t']);
            prop_assert_eq!(sc.is_valid(), spec_accepts(field_value), "{:?}", value);
            if sc.is_valid() {
                prop_assert_eq!(sc.trace_id().to_string(), &field_value[3..35]);
                prop_assert_eq!(sc.span_id().to_string(), &field_value[36..52]);
            }
        }

        #[test]
        fn arbitrary_bytes_in_every_field_never_panic(
            traceparent in proptest::collection::vec(any::<u8>(), 0..80),
            tracestate in proptest::collection::vec(any::<u8>(), 0..600),
            baggage in proptest::collection::vec(any::<u8>(), 0..10_000),
        ) {
            let Some(map) = headers(&[
                ("traceparent", &traceparent),
                ("tracestate", &tracestate),
                ("baggage", &baggage),
            ]) else { return Ok(()) };
            let cx = propagator().extract(&HeaderExtractor(&map));
            // Whatever was extracted can be sent on without producing an invalid header.
            let mut out = HeaderMap::new();
            propagator().inject_context(&cx, &mut HeaderInjector(&mut out));
            if let Some(tp) = out.get("traceparent") {
                prop_assert!(is_valid_traceparent(tp.to_str().unwrap()));
            }
        }

        #[test]
        fn a_valid_traceparent_survives_any_tracestate_and_baggage(
            tracestate in "[ -~]{0,300}",
            baggage in "[ -~]{0,9000}",
        ) {
            let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let Some(map) = headers(&[
                ("traceparent", valid.as_bytes()),
                ("tracestate", tracestate.as_bytes()),
                ("baggage", baggage.as_bytes()),
            ]) else { return Ok(()) };
            let cx = propagator().extract(&HeaderExtractor(&map));
            prop_assert_eq!(
                cx.span().span_context().trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            // Oversized baggage is bounded, not carried on whole (W3C: 8192 bytes).
            let carried: usize = cx.baggage().iter().map(|(k, (v, _))| k.as_str().len() + v.as_str().len()).sum();
            prop_assert!(carried <= 8192, "{} bytes of baggage kept", carried);
        }

        #[test]
        fn inject_then_extract_is_the_identity(
            trace in 1u128..,
            span in 1u64..,
            sampled in any::<bool>(),
            members in proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", "[a-z0-9]{1,8}"), 0..4),
        ) {
            let state = TraceState::from_key_value(members.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_or_default();
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let sc = SpanContext::new(TraceId::from(trace), SpanId::from(span), flags, true, state);
            let cx = Context::new().with_remote_span_context(sc.clone());
            let mut map = HeaderMap::new();
            propagator().inject_context(&cx, &mut HeaderInjector(&mut map));
            let back = propagator().extract(&HeaderExtractor(&map));
            let got = back.span().span_context().clone();
            prop_assert_eq!(got.trace_id(), sc.trace_id());
            prop_assert_eq!(got.span_id(), sc.span_id());
            prop_assert_eq!(got.is_sampled(), sampled);
            prop_assert_eq!(got.trace_state().header(), sc.trace_state().header());
        }
    }
}
