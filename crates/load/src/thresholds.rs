//! Thresholds: the pass/fail rules of a run, as the k6 scripts' `thresholds`.
//!
//! A [`Threshold`] reads one value from a run's [`Measurements`] (a failed-request
//! rate, a latency statistic of one request name, a check rate, a counter) and compares
//! it with a limit. A value with no samples behind it fails: a rule about orders during
//! an outage proves nothing when no order was placed. Rules print in k6's notation
//! (`http_req_duration{name:GET /api/products,phase:baseline}` `p(95)<300`), so they
//! read against the scripts.

use crate::checks::Group;
use crate::shop::{RequestName, Route, Tag};
use crate::summary::{Measurements, RequestStats};
use serde::Serialize;
use std::fmt;

/// Which requests a failed-request rate counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestFilter {
    /// One route, or all.
    pub route: Option<Route>,
    /// Which tags.
    pub tags: TagFilter,
}

/// Which tags a [`RequestFilter`] takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TagFilter {
    /// Every request.
    Any,
    /// Requests with this tag (a chaos phase).
    Exactly(Tag),
    /// Requests of this group (chaos's shoppers, whatever the phase).
    Group(Group),
}

impl RequestFilter {
    /// Every request of the run.
    pub const ALL: RequestFilter = RequestFilter {
        route: None,
        tags: TagFilter::Any,
    };

    fn matches(&self, name: &RequestName) -> bool {
        self.route.is_none_or(|route| route == name.route)
            && match self.tags {
                TagFilter::Any => true,
                TagFilter::Exactly(tag) => name.tag == tag,
                TagFilter::Group(group) => name.tag.group() == group,
            }
    }

    fn selector(&self) -> String {
        let mut parts = Vec::new();
        if let Some(route) = self.route {
            parts.push(format!("name:{route}"));
        }
        match self.tags {
            TagFilter::Any => {}
            TagFilter::Exactly(tag) => parts.push(tag_selector(tag)),
            TagFilter::Group(group) => parts.push(format!("group:{}", group.as_str())),
        }
        braces(&parts)
    }
}

fn tag_selector(tag: Tag) -> String {
    match tag {
        Tag::Untagged => "untagged".into(),
        Tag::Phase(phase) => format!("phase:{}", phase.as_str()),
        Tag::Controller => "group:controller".into(),
    }
}

fn braces(parts: &[String]) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// The median.
    Median,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl Stat {
    fn of(self, stats: &RequestStats) -> f64 {
        match self {
            Stat::Median => stats.p50_ms,
            Stat::P95 => stats.p95_ms,
            Stat::P99 => stats.p99_ms,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Stat::Median => "med",
            Stat::P95 => "p(95)",
            Stat::P99 => "p(99)",
        }
    }
}

/// What a threshold reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Share of requests with an unexpected status, 0 to 1 (k6's `http_req_failed`).
    FailedRate(RequestFilter),
    /// A latency statistic of one request name, in milliseconds (`http_req_duration`).
    Duration(RequestName, Stat),
    /// Share of checks that held, 0 to 1, of one group or all (`checks`).
    CheckRate(Option<Group>),
    /// A counter of the run, by name.
    Counter(&'static str),
}

/// How the observed value compares with the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        })
    }
}

/// One pass/fail rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is read.
    pub measure: Measure,
    /// How it compares.
    pub op: Op,
    /// With what.
    pub limit: f64,
}

/// A rule judged at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    /// The metric and its selector, as k6 writes it: `checks{group:controller}`.
    pub metric: String,
    /// The condition: `rate<0.01`, `p(95)<300`, `med>=300`, `count==1`.
    pub condition: String,
    /// What was observed: a rate, milliseconds or a count; `None` without samples.
    pub observed: Option<f64>,
    /// How many samples the value rests on (requests, checks; the count for a counter).
    pub samples: u64,
    /// Whether the rule held.
    pub passed: bool,
}

impl ThresholdResult {
    /// `metric condition: observed value`, for the console.
    pub fn describe(&self) -> String {
        let observed = match self.observed {
            Some(v) if self.condition.starts_with("rate") => format!("{v:.4}"),
            Some(v) => format!("{v:.1}"),
            None => "no samples".into(),
        };
        format!(
            "{} {} (observed {observed}, {} samples)",
            self.metric, self.condition, self.samples
        )
    }
}

impl Threshold {
    /// A rule `measure op limit`.
    pub fn new(measure: Measure, op: Op, limit: f64) -> Self {
        Self { measure, op, limit }
    }

    /// The metric as k6 writes it.
    pub fn metric(&self) -> String {
        match &self.measure {
            Measure::FailedRate(filter) => format!("http_req_failed{}", filter.selector()),
            Measure::Duration(name, _) => {
                let mut parts = vec![format!("name:{}", name.route)];
                if name.tag != Tag::Untagged {
                    parts.push(tag_selector(name.tag));
                }
                format!("http_req_duration{}", braces(&parts))
            }
            Measure::CheckRate(None) => "checks".into(),
            Measure::CheckRate(Some(group)) => format!("checks{{group:{}}}", group.as_str()),
            Measure::Counter(name) => (*name).into(),
        }
    }

    /// The condition as k6 writes it.
    pub fn condition(&self) -> String {
        let stat = match &self.measure {
            Measure::FailedRate(_) | Measure::CheckRate(_) => "rate",
            Measure::Duration(_, stat) => stat.as_str(),
            Measure::Counter(_) => "count",
        };
        format!("{stat}{}{}", self.op, self.limit)
    }

    /// Reads the value from `measured` and judges it.
    pub fn evaluate(&self, measured: &Measurements) -> ThresholdResult {
        let (observed, samples) = match &self.measure {
            Measure::FailedRate(filter) => {
                let (count, failures) = measured
                    .requests
                    .iter()
                    .filter(|r| filter.matches(&r.name))
                    .fold((0, 0), |(c, f), r| (c + r.count, f + r.failures));
                (rate(failures, count), count)
            }
            Measure::Duration(name, stat) => {
                match measured.requests.iter().find(|r| &r.name == name) {
                    Some(stats) if stats.count > 0 => (Some(stat.of(stats)), stats.count),
                    _ => (None, 0),
                }
            }
            Measure::CheckRate(group) => {
                let (passes, total) = measured
                    .checks
                    .iter()
                    .filter(|c| group.is_none_or(|g| g == c.group))
                    .fold((0, 0), |(p, t), c| (p + c.passes, t + c.passes + c.fails));
                (rate(passes, total), total)
            }
            Measure::Counter(name) => {
                let count = measured.counters.get(*name).copied().unwrap_or(0);
                (Some(count as f64), count)
            }
        };
        ThresholdResult {
            metric: self.metric(),
            condition: self.condition(),
            observed,
            samples,
            passed: observed.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }
}

fn rate(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

/// Judges every rule.
pub fn evaluate(thresholds: &[Threshold], measured: &Measurements) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(measured)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::chaos::Phase;
    use crate::summary::CheckStats;
    use std::collections::BTreeMap;

    fn stats(route: Route, tag: Tag, count: u64, failures: u64, p95: f64) -> RequestStats {
        RequestStats::new(
            RequestName { route, tag },
            count,
            failures,
            BTreeMap::new(),
            [p95 / 2.0, p95, p95 * 1.5, p95 * 2.0],
        )
    }

    fn check(group: Group, name: &str, passes: u64, fails: u64) -> CheckStats {
        CheckStats {
            group,
            name: name.into(),
            passes,
            fails,
            failures: Vec::new(),
        }
    }

    fn measured() -> Measurements {
        let baseline = Tag::Phase(Phase::Baseline);
        let down = Tag::Phase(Phase::ServiceBDown);
        Measurements {
            requests: vec![
                stats(Route::Products, baseline, 100, 0, 40.0),
                stats(Route::CreateOrder, baseline, 100, 0, 90.0),
                stats(Route::CreateOrder, down, 50, 5, 120.0),
                stats(Route::Products, Tag::Controller, 3, 3, 10.0),
            ],
            checks: vec![
                check(Group::Shoppers, "a", 99, 1),
                check(Group::Controller, "b", 4, 0),
            ],
            counters: BTreeMap::from([("orders_fulfilled".to_string(), 1)]),
        }
    }

    #[test]
    fn passing_rules() {
        let m = measured();
        let rules = [
            Threshold::new(
                Measure::Duration(
                    RequestName {
                        route: Route::Products,
                        tag: Tag::Phase(Phase::Baseline),
                    },
                    Stat::P95,
                ),
                Op::Lt,
                300.0,
            ),
            Threshold::new(Measure::CheckRate(Some(Group::Controller)), Op::Eq, 1.0),
            Threshold::new(Measure::CheckRate(None), Op::Gt, 0.98),
            Threshold::new(Measure::Counter("orders_fulfilled"), Op::Eq, 1.0),
            Threshold::new(
                Measure::FailedRate(RequestFilter {
                    route: Some(Route::CreateOrder),
                    tags: TagFilter::Exactly(Tag::Phase(Phase::Baseline)),
                }),
                Op::Lt,
                0.01,
            ),
        ];
        for result in evaluate(&rules, &m) {
            assert!(result.passed, "{}", result.describe());
        }
    }

    #[test]
    fn a_failing_rule_reports_what_it_saw() {
        let m = measured();
        let rule = Threshold::new(
            Measure::FailedRate(RequestFilter {
                route: Some(Route::CreateOrder),
                tags: TagFilter::Exactly(Tag::Phase(Phase::ServiceBDown)),
            }),
            Op::Lt,
            0.01,
        );
        let result = rule.evaluate(&m);
        assert!(!result.passed);
        assert_eq!(result.observed, Some(0.1));
        assert_eq!(result.samples, 50);
        assert_eq!(
            result.metric,
            "http_req_failed{name:POST /api/orders,phase:service_b_down}"
        );
        assert_eq!(result.condition, "rate<0.01");
        assert!(result.describe().contains("observed 0.1000"));
    }

    #[test]
    fn group_filters_leave_the_other_group_out() {
        let m = measured();
        // The controller's three failed requests are not the shoppers' failures.
        let shoppers = Threshold::new(
            Measure::FailedRate(RequestFilter {
                route: None,
                tags: TagFilter::Group(Group::Shoppers),
            }),
            Op::Lt,
            0.02,
        )
        .evaluate(&m);
        assert_eq!(shoppers.observed, Some(5.0 / 250.0));
        assert!(!shoppers.passed, "0.02 is not < 0.02");
        let all =
            Threshold::new(Measure::FailedRate(RequestFilter::ALL), Op::Lt, 0.05).evaluate(&m);
        assert_eq!(all.samples, 253);
        assert!(all.passed);
        let controller_checks =
            Threshold::new(Measure::CheckRate(Some(Group::Shoppers)), Op::Eq, 1.0).evaluate(&m);
        assert_eq!(controller_checks.observed, Some(0.99));
        assert!(!controller_checks.passed);
    }

    #[test]
    fn no_samples_fails() {
        let m = measured();
        let slow = RequestName {
            route: Route::Products,
            tag: Tag::Phase(Phase::ServiceDSlow),
        };
        let result =
            Threshold::new(Measure::Duration(slow, Stat::Median), Op::Ge, 300.0).evaluate(&m);
        assert_eq!(result.observed, None);
        assert!(!result.passed);
        assert_eq!(
            result.metric,
            "http_req_duration{name:GET /api/products,phase:service_d_slow}"
        );
        assert_eq!(result.condition, "med>=300");
        assert!(result.describe().contains("no samples"));
        let none = Measurements::default();
        assert!(
            !Threshold::new(Measure::CheckRate(None), Op::Eq, 1.0)
                .evaluate(&none)
                .passed
        );
        // A counter that never moved is observed as 0, not as missing.
        let counter =
            Threshold::new(Measure::Counter("orders_fulfilled"), Op::Eq, 1.0).evaluate(&none);
        assert_eq!(counter.observed, Some(0.0));
        assert!(!counter.passed);
    }

    #[test]
    fn latency_limits_are_judged_on_the_right_statistic() {
        let m = measured();
        let name = RequestName {
            route: Route::CreateOrder,
            tag: Tag::Phase(Phase::Baseline),
        };
        // p50 45, p95 90, p99 135 (see `stats`).
        let p99 = Threshold::new(Measure::Duration(name, Stat::P99), Op::Lt, 100.0).evaluate(&m);
        assert_eq!(p99.observed, Some(135.0));
        assert!(!p99.passed);
        let med = Threshold::new(Measure::Duration(name, Stat::Median), Op::Ge, 45.0).evaluate(&m);
        assert!(med.passed);
    }
}
