//! Checks: named assertions on responses, counted pass and fail, as k6's `check()`.
//!
//! Goose counts requests and their statuses; whether an order came back with an id and a
//! positive total is ours to count. Each check belongs to a [`Group`] (the shoppers, or the
//! chaos controller), so thresholds can be set per group as chaos.js does with tags. A
//! failed check is logged with the trace id its request carried, the first few times per
//! check; every failure is counted.

use crate::traceparent::TraceParent;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How many failures of one check are logged, and kept in the summary, with their trace.
pub const LOGGED_FAILURES_PER_CHECK: usize = 5;

/// Who made the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// The shoppers (every check of smoke and load, and chaos's shoppers).
    Shoppers,
    /// The chaos controller, which breaks and heals services.
    Controller,
}

impl Group {
    /// The name in summaries and thresholds.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Shoppers => "shoppers",
            Group::Controller => "controller",
        }
    }
}

/// One failure, kept for the summary: which trace to open, and what was wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The trace id the request carried (`traceparent`), or none for a check on
    /// something other than one response.
    pub trace_id: Option<String>,
    /// What was seen instead.
    pub detail: String,
}

/// The counts of one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckCount {
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub fails: u64,
    /// The first [`LOGGED_FAILURES_PER_CHECK`] failures.
    pub failures: Vec<Failure>,
}

/// Every check of a run, shared by all users.
#[derive(Debug, Default)]
pub struct Checks {
    counts: Mutex<BTreeMap<(Group, String), CheckCount>>,
}

impl Checks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one outcome of check `name` and returns `passed`. On a failure `detail` is
    /// called for the log line, and the trace id of `trace` is logged with it.
    pub fn record(
        &self,
        group: Group,
        name: &str,
        passed: bool,
        trace: Option<&TraceParent>,
        detail: impl FnOnce() -> String,
    ) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry((group, name.to_string())).or_default();
        if passed {
            count.passes += 1;
        } else {
            count.fails += 1;
            if count.failures.len() < LOGGED_FAILURES_PER_CHECK {
                let failure = Failure {
                    trace_id: trace.map(TraceParent::trace_id),
                    detail: detail(),
                };
                eprintln!(
                    "load: check failed [{}] {name}: {} (trace {})",
                    group.as_str(),
                    failure.detail,
                    failure.trace_id.as_deref().unwrap_or("none"),
                );
                if count.failures.len() + 1 == LOGGED_FAILURES_PER_CHECK {
                    eprintln!(
                        "load: further failures of [{}] {name} are counted, not logged",
                        group.as_str()
                    );
                }
                count.failures.push(failure);
            }
        }
        passed
    }

    /// The counts so far, ordered by group and name.
    pub fn snapshot(&self) -> Vec<(Group, String, CheckCount)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((group, name), count)| (*group, name.clone(), count.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_passes_and_failures_per_group_and_name() {
        let checks = Checks::new();
        let tp = TraceParent::random();
        assert!(checks.record(Group::Shoppers, "a", true, Some(&tp), || unreachable!()));
        assert!(!checks.record(Group::Shoppers, "a", false, Some(&tp), || "got 500".into()));
        checks.record(Group::Controller, "a", true, None, String::new);
        let snapshot = checks.snapshot();
        assert_eq!(snapshot.len(), 2);
        let (group, name, count) = &snapshot[0];
        assert_eq!((*group, name.as_str()), (Group::Shoppers, "a"));
        assert_eq!((count.passes, count.fails), (1, 1));
        assert_eq!(count.failures[0].trace_id, Some(tp.trace_id()));
        assert_eq!(count.failures[0].detail, "got 500");
        assert_eq!(snapshot[1].0, Group::Controller);
    }

    #[test]
    fn keeps_only_the_first_failures() {
        let checks = Checks::new();
        for i in 0..20 {
            checks.record(Group::Shoppers, "x", false, None, || format!("{i}"));
        }
        let (_, _, count) = &checks.snapshot()[0];
        assert_eq!(count.fails, 20);
        assert_eq!(count.failures.len(), LOGGED_FAILURES_PER_CHECK);
        assert_eq!(count.failures[0].detail, "0");
    }
}
