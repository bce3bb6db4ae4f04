//! What a run measured and how it was judged: the console report and the
//! `--summary-json` file the stack test reads.
//!
//! Request figures come from the metrics goose returns (counts, failures, statuses and its
//! response-time buckets, whose percentiles are within 0.8% of the exact value); checks and
//! counters from the run's own tallies.
//!
//! The JSON file:
//!
//! ```text
//! { "scenario": "chaos", "passed": true, "duration_s": 61.2, "base_url": "...",
//!   "iterations": { "shoppers": 150, "controller": 3 },
//!   "requests": { "GET /api/products [baseline]": { "route": "GET /api/products",
//!       "phase": "baseline", "group": "shoppers", "count": 40, "failures": 0,
//!       "statuses": { "200": 40 }, "p50_ms": 6.1, "p95_ms": 9.8, "p99_ms": 12.0,
//!       "max_ms": 12.3 }, ... },
//!   "checks": [ { "group": "controller", "name": "service-b: faults reset",
//!       "passes": 1, "fails": 0, "failures": [] }, ... ],
//!   "counters": { "orders_fulfilled": 1 },
//!   "thresholds": [ { "metric": "checks{group:controller}", "condition": "rate==1",
//!       "observed": 1.0, "samples": 12, "passed": true }, ... ],
//!   "notes": [] }
//! ```
//!
//! `failures` of a request counts unexpected statuses (and no response at all, status 0);
//! a check's `failures` holds its first failures with the trace id to open.

use crate::checks::{Checks, Failure, Group};
use crate::shop::RequestName;
use crate::thresholds::ThresholdResult;
use goose::metrics::GooseMetrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One request name's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestStats {
    /// The name (the key of the summary's `requests`).
    #[serde(skip)]
    pub name: RequestName,
    /// The route: `GET /api/orders/{id}`.
    pub route: String,
    /// The chaos phase, for a chaos shopper's request.
    pub phase: Option<&'static str>,
    /// Whose request it was.
    pub group: Group,
    /// Requests sent.
    pub count: u64,
    /// Requests with an unexpected status, or no response.
    pub failures: u64,
    /// Requests by status; 0 is no response.
    pub statuses: BTreeMap<u16, u64>,
    /// Median time to the response's headers.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl RequestStats {
    /// Figures of `name`; `times` are p50, p95, p99 and max in milliseconds.
    pub fn new(
        name: RequestName,
        count: u64,
        failures: u64,
        statuses: BTreeMap<u16, u64>,
        times: [f64; 4],
    ) -> Self {
        let [p50_ms, p95_ms, p99_ms, max_ms] = times;
        Self {
            name,
            route: name.route.to_string(),
            phase: name.tag.phase().map(|p| p.as_str()),
            group: name.tag.group(),
            count,
            failures,
            statuses,
            p50_ms,
            p95_ms,
            p99_ms,
            max_ms,
        }
    }
}

/// One check's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckStats {
    /// Whose check.
    pub group: Group,
    /// Its name.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub fails: u64,
    /// The first failures, with their trace ids.
    pub failures: Vec<Failure>,
}

/// What thresholds are judged on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    /// Per request name, in a fixed order.
    pub requests: Vec<RequestStats>,
    /// Per check.
    pub checks: Vec<CheckStats>,
    /// The run's counters (`orders_fulfilled`).
    pub counters: BTreeMap<String, u64>,
}

/// Reads goose's request metrics by [`RequestName`] and takes the checks' counts.
pub fn measure(
    metrics: &GooseMetrics,
    checks: &Checks,
    counters: BTreeMap<String, u64>,
) -> Measurements {
    let requests = RequestName::all()
        .filter_map(|name| {
            let aggregate = metrics.requests.get(&name.to_string())?;
            let timing = &aggregate.raw_data;
            let ms = |us: u64| us as f64 / 1000.0;
            let statuses = aggregate
                .status_code_counts
                .iter()
                .map(|(status, count)| (*status, *count as u64))
                .collect();
            Some(RequestStats::new(
                name,
                (aggregate.success_count + aggregate.fail_count) as u64,
                aggregate.fail_count as u64,
                statuses,
                [
                    ms(timing.percentile_us(0.50)),
                    ms(timing.percentile_us(0.95)),
                    ms(timing.percentile_us(0.99)),
                    ms(timing.maximum_time_us),
                ],
            ))
        })
        .collect();
    let checks = checks
        .snapshot()
        .into_iter()
        .map(|(group, name, count)| CheckStats {
            group,
            name,
            passes: count.passes,
            fails: count.fails,
            failures: count.failures,
        })
        .collect();
    Measurements {
        requests,
        checks,
        counters,
    }
}

/// A judged run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `smoke`, `load` or `chaos`.
    pub scenario: &'static str,
    /// Whether every threshold held.
    pub passed: bool,
    /// Wall time of the attack, seconds.
    pub duration_s: f64,
    /// The gateway.
    pub base_url: String,
    /// Iterations per goose scenario (`shoppers`, `controller`), as goose counts them: an
    /// iteration cut short by the end of the run (each user's last) is not counted.
    pub iterations: BTreeMap<String, u64>,
    /// Per request name.
    pub requests: BTreeMap<String, RequestStats>,
    /// Per check.
    pub checks: Vec<CheckStats>,
    /// The run's counters.
    pub counters: BTreeMap<String, u64>,
    /// Every rule, in order.
    pub thresholds: Vec<ThresholdResult>,
    /// Anything else worth knowing (the run was stopped early, and why).
    pub notes: Vec<String>,
}

impl Summary {
    /// Puts a summary together; `passed` is whether every threshold held.
    pub fn new(
        scenario: &'static str,
        base_url: &str,
        duration_s: f64,
        iterations: BTreeMap<String, u64>,
        measured: Measurements,
        thresholds: Vec<ThresholdResult>,
        notes: Vec<String>,
    ) -> Self {
        Self {
            scenario,
            passed: !thresholds.is_empty() && thresholds.iter().all(|t| t.passed),
            duration_s,
            base_url: base_url.to_string(),
            iterations,
            requests: measured
                .requests
                .into_iter()
                .map(|r| (r.name.to_string(), r))
                .collect(),
            checks: measured.checks,
            counters: measured.counters,
            thresholds,
            notes,
        }
    }

    /// The thresholds that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.passed)
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serializes")
    }

    /// Writes the JSON document to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json() + "\n")
    }

    /// The console report: requests, checks with failures, thresholds.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let iterations = self
            .iterations
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "\nload {}: {:.1} s against {} (iterations: {})",
            self.scenario,
            self.duration_s,
            self.base_url,
            if iterations.is_empty() {
                "none".into()
            } else {
                iterations
            }
        );
        let width = self
            .requests
            .keys()
            .map(|k| k.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            out,
            "{:width$}  {:>6} {:>5} {:>8} {:>8} {:>8} {:>8}",
            "request", "count", "fail", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for (name, r) in &self.requests {
            let _ = writeln!(
                out,
                "{name:width$}  {:>6} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                r.count, r.failures, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
            );
        }
        let passes: u64 = self.checks.iter().map(|c| c.passes).sum();
        let fails: u64 = self.checks.iter().map(|c| c.fails).sum();
        let _ = writeln!(out, "checks: {passes} passed, {fails} failed");
        for check in self.checks.iter().filter(|c| c.fails > 0) {
            let trace = check
                .failures
                .iter()
                .find_map(|f| f.trace_id.as_deref())
                .unwrap_or("none");
            let _ = writeln!(
                out,
                "  FAILED [{}] {}: {} of {} (first trace {trace})",
                check.group.as_str(),
                check.name,
                check.fails,
                check.passes + check.fails
            );
        }
        for (name, value) in &self.counters {
            let _ = writeln!(out, "{name}: {value}");
        }
        let _ = writeln!(out, "thresholds:");
        for t in &self.thresholds {
            let verdict = if t.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {verdict} {}", t.describe());
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed {
                "result: every threshold held"
            } else {
                "result: FAILED"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::chaos::Phase;
    use crate::shop::{Route, Tag};
    use crate::thresholds::{Measure, Op, RequestFilter, Threshold, evaluate};

    fn sample() -> Summary {
        let name = RequestName {
            route: Route::Products,
            tag: Tag::Phase(Phase::Baseline),
        };
        let measured = Measurements {
            requests: vec![RequestStats::new(
                name,
                10,
                1,
                BTreeMap::from([(200, 9), (503, 1)]),
                [5.0, 9.0, 12.0, 13.0],
            )],
            checks: vec![CheckStats {
                group: Group::Shoppers,
                name: "products: status 200".into(),
                passes: 9,
                fails: 1,
                failures: vec![Failure {
                    trace_id: Some("ab".repeat(16)),
                    detail: "status 503".into(),
                }],
            }],
            counters: BTreeMap::new(),
        };
        let results = evaluate(
            &[Threshold::new(
                Measure::FailedRate(RequestFilter::ALL),
                Op::Lt,
                0.01,
            )],
            &measured,
        );
        Summary::new(
            "chaos",
            "http://localhost:8080",
            1.5,
            BTreeMap::from([("shoppers".to_string(), 3)]),
            measured,
            results,
            vec![],
        )
    }

    #[test]
    fn json_has_what_the_stack_test_reads() {
        let summary = sample();
        assert!(!summary.passed);
        let json: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        let products = &json["requests"]["GET /api/products [baseline]"];
        assert_eq!(products["count"], 10);
        assert_eq!(products["failures"], 1);
        assert_eq!(products["p95_ms"], 9.0);
        assert_eq!(products["phase"], "baseline");
        assert_eq!(products["group"], "shoppers");
        assert_eq!(products["statuses"]["503"], 1);
        assert_eq!(json["checks"][0]["fails"], 1);
        assert_eq!(
            json["checks"][0]["failures"][0]["trace_id"],
            "ab".repeat(16)
        );
        assert_eq!(json["thresholds"][0]["metric"], "http_req_failed");
        assert_eq!(json["thresholds"][0]["observed"], 0.1);
        assert_eq!(json["thresholds"][0]["passed"], false);
        assert_eq!(json["passed"], false);
    }

    #[test]
    fn console_report_names_failures_and_traces() {
        let text = sample().render();
        assert!(text.contains("GET /api/products [baseline]"), "{text}");
        assert!(text.contains(&"ab".repeat(16)), "{text}");
        assert!(text.contains("FAIL http_req_failed rate<0.01"), "{text}");
        assert!(text.contains("result: FAILED"), "{text}");
    }

    #[test]
    fn no_thresholds_is_not_a_pass() {
        let summary = Summary::new(
            "smoke",
            "x",
            0.0,
            BTreeMap::new(),
            Measurements::default(),
            vec![],
            vec![],
        );
        assert!(!summary.passed);
    }
}
