//! Context propagation through Kafka message headers (feature `kafka`).
//!
//! Kafka headers are the HTTP headers of messaging: the producer writes `traceparent`,
//! `tracestate` and `baggage` into them, the consumer reads them back and continues (or
//! links to) the producer's trace. rdkafka's `OwnedHeaders::insert` consumes and returns
//! the headers, so injection collects the fields first and then builds the headers.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Returns `headers` with the propagation fields of `cx` appended.
pub fn inject_context(cx: &Context, headers: OwnedHeaders) -> OwnedHeaders {
    let mut fields = FieldCollector(Vec::new());
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, &mut fields));
    fields.0.iter().fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    })
}

/// Extracts the producer's context from message headers (borrowed or owned).
///
/// Headers that are missing, not UTF-8 or malformed give a context without a remote span.
pub fn extract_context<H: Headers>(headers: &H) -> Context {
    let carrier = HeaderCarrier::from_headers(headers);
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier))
}

struct FieldCollector(Vec<(String, String)>);

impl Injector for FieldCollector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// UTF-8 headers of one message, copied out so the extractor owns its data.
struct HeaderCarrier(Vec<(String, String)>);

impl HeaderCarrier {
    fn from_headers<H: Headers>(headers: &H) -> Self {
        Self(
            headers
                .iter()
                .filter_map(|h| {
                    let value = std::str::from_utf8(h.value?).ok()?;
                    Some((h.key.to_owned(), value.to_owned()))
                })
                .collect(),
        )
    }
}

impl Extractor for HeaderCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        // Kafka header keys are case-sensitive bytes; propagators use lowercase names,
        // but other producers may not, so match without case. The last one wins, as
        // the newest hop appends its own context.
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::PropagatorKind, propagation};
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn header_carrier_reads_the_last_matching_utf8_header() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-11111111111111111111111111111111-1111111111111111-01"),
            })
            .insert(Header {
                key: "binary",
                value: Some(&[0xff_u8, 0xfe][..]),
            })
            .insert(Header {
                key: "TraceParent",
                value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            });
        let carrier = HeaderCarrier::from_headers(&headers);
        assert_eq!(carrier.keys(), vec!["traceparent", "TraceParent"]);
        let cx = propagation::build(&[PropagatorKind::TraceContext]).extract(&carrier);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
