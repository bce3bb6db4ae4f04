//! W3C Trace Context `traceparent` values for outgoing requests.
//!
//! Every request the tool sends starts a trace of its own: a fresh random trace id and
//! parent span id, with the sampled flag set, so the gateway continues it and the load
//! shows up in Tempo. The trace id is kept with each check, so a failed check names a
//! trace to open.

use std::fmt;

/// One `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
}

impl TraceParent {
    /// The header name.
    pub const HEADER: &'static str = "traceparent";

    /// A fresh random trace id and parent span id. Neither is ever all zeros, which
    /// the W3C spec declares invalid (a receiver would start a new trace instead).
    pub fn random() -> Self {
        Self {
            trace_id: fastrand::u128(1..),
            parent_id: fastrand::u64(1..),
        }
    }

    /// The trace id as 32 lowercase hex digits, as Tempo and the services' logs show it.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The parent span id as 16 lowercase hex digits.
    pub fn parent_id(&self) -> String {
        format!("{:016x}", self.parent_id)
    }
}

impl fmt::Display for TraceParent {
    /// The header value, version 00, sampled.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-01", self.trace_id, self.parent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_lower_hex(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn header_has_the_w3c_shape_and_the_sampled_flag() {
        for _ in 0..1000 {
            let tp = TraceParent::random();
            let value = tp.to_string();
            let parts: Vec<&str> = value.split('-').collect();
            assert_eq!(parts.len(), 4, "{value}");
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1].len(), 32);
            assert_eq!(parts[2].len(), 16);
            assert_eq!(parts[3], "01");
            assert!(is_lower_hex(parts[1]) && is_lower_hex(parts[2]), "{value}");
            assert_ne!(parts[1], "0".repeat(32));
            assert_ne!(parts[2], "0".repeat(16));
            assert_eq!(parts[1], tp.trace_id());
            assert_eq!(parts[2], tp.parent_id());
        }
    }

    #[test]
    fn ids_are_random() {
        let traces: HashSet<String> = (0..10_000)
            .map(|_| TraceParent::random().trace_id())
            .collect();
        let spans: HashSet<String> = (0..10_000)
            .map(|_| TraceParent::random().parent_id())
            .collect();
        assert_eq!(traces.len(), 10_000);
        assert_eq!(spans.len(), 10_000);
        // Every hex digit position varies: not a counter, not a fixed prefix.
        let first = TraceParent::random().trace_id();
        for position in 0..32 {
            assert!(
                traces
                    .iter()
                    .any(|t| t.as_bytes()[position] != first.as_bytes()[position]),
                "position {position} never changes"
            );
        }
    }

    #[test]
    fn small_ids_are_zero_padded() {
        let tp = TraceParent {
            trace_id: 1,
            parent_id: 2,
        };
        assert_eq!(
            tp.to_string(),
            "00-00000000000000000000000000000001-0000000000000002-01"
        );
    }
}
