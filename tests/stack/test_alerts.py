"""Alerts that fire for real: a fault under steady traffic, the rules of observability/rules on
the real Prometheus, the real Alertmanager with observability/alertmanager.yml, and the demo's
webhook receiver (crates/alert-webhook), which records every notification.

The stack runs the rules ALERT_TIME_SCALE times faster (scripts/stack-test.sh sets 20, through
gen_rules.py --time-scale: the same rules, shorter windows): a minute of fault then burns what
an hour would. During the fault (service-b failing, service-d slower than the latency SLO's
500 ms) exactly the expected alerts must reach the webhook within FIRE_WITHIN_S, and each must
resolve within RESOLVE_WITHIN_S of the fault being lifted. Natively only: compose loads the
production windows, which a test cannot wait out.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from backends import (ALERTMANAGER, COLLECTOR_METRICS, COMPOSE, PROMETHEUS, ROOT, STATE, Traffic,
                      alert_events, clear_faults, eventually, firing_in_prometheus, get_json, http,
                      notifications, set_fault)

SCALE = int(os.environ.get("ALERT_TIME_SCALE", "1"))

# What the fault must fire, and why. During the fault:
#   CircuitBreakerOpen              service-a's breaker to the failing service-b opens;
#   GatewayLatencyBudgetBurnFast    every gateway route waits on service-d (800 ms > 500 ms).
# The fault is lifted once both have reached the webhook. Then, as consequences:
#   GatewayLatencyBudgetBurnSlow    the same minute is also above 3x the budget over the slow
#                                   pair's windows: the stack is minutes old, and a young
#                                   Prometheus has no long history to dilute it;
#   OrderFreshnessBudgetBurnFast    the orders accepted while the breaker was open waited in the
#   OrderFreshnessBudgetBurnSlow    outbox and are fulfilled late (over 10 s) once it closes.
# Everything else stays silent: availability (no 5xx: orders still get 201), the pipeline,
# dead-letter, lag and scrape alerts. The page alerts and the breaker must resolve within
# RESOLVE_WITHIN_S of the fault being lifted; the ticket (slow) alerts resolve only when their
# 2h and 6h windows (6 and 18 minutes at scale 20) have passed, which the test does not wait for.
DURING_FAULT = {"CircuitBreakerOpen", "GatewayLatencyBudgetBurnFast"}
AFTER_FAULT = {"GatewayLatencyBudgetBurnSlow", "OrderFreshnessBudgetBurnFast",
               "OrderFreshnessBudgetBurnSlow"}
EXPECTED = DURING_FAULT | AFTER_FAULT
MUST_RESOLVE = {"CircuitBreakerOpen", "GatewayLatencyBudgetBurnFast", "OrderFreshnessBudgetBurnFast"}
FIRE_WITHIN_S = 180  # every expected alert at the webhook, counted from the fault's start
RESOLVE_WITHIN_S = 180
SLOW_MS = 800


def test_alerts_fire_during_a_fault_and_resolve_after_it():
    if COMPOSE:
        pytest.skip("compose's Prometheus loads the production windows (an hour and more)")
    if SCALE == 1:
        pytest.skip("needs ALERT_TIME_SCALE (scripts/stack-test.sh sets 20)")
    groups = get_json(f"{PROMETHEUS}/api/v1/rules")["data"]["groups"]
    assert {g["name"] for g in groups} >= {"slo-recording", "slo-alerts",
                                           "pipeline-and-dependencies"}, groups
    status, _, _ = http("GET", f"{ALERTMANAGER}/-/ready")
    assert status == 200, "Alertmanager is not ready"
    before = len(notifications())

    with Traffic("alerts") as traffic:
        # A healthy half minute first: the rates exist and nothing fires.
        time.sleep(30)
        quiet = firing_in_prometheus()
        assert not quiet, f"alerts firing before any fault: {quiet}"

        def reached(state: str, names: set[str]):
            def check():
                seen = {name for _, name, st in alert_events() if st == state}
                return names <= seen and seen
            return check

        set_fault("service-b", {"error_rate": 1.0})
        set_fault("service-d", {"latency_ms": SLOW_MS})
        fault_at = time.time()
        try:
            eventually("the fault's alerts at the webhook", reached("firing", DURING_FAULT),
                       FIRE_WITHIN_S, 2)
        finally:
            clear_faults("service-b")
            clear_faults("service-d")
        lifted_at = time.time()
        eventually("every expected alert at the webhook", reached("firing", EXPECTED),
                   FIRE_WITHIN_S - (lifted_at - fault_at), 2)
        eventually("the page alerts and the breaker resolved at the webhook",
                   reached("resolved", MUST_RESOLVE), RESOLVE_WITHIN_S, 2)
        done_at = time.time()

    events = alert_events()
    fired = {name for _, name, state in events if state == "firing"}
    first = {}
    for at, name, state in sorted(events):
        first.setdefault((name, state), at)
    print(f"\ntraffic: {dict(traffic.statuses)}; {len(notifications()) - before} notifications")
    for name in sorted(fired):
        fire = first.get((name, "firing"), 0) - fault_at
        resolve = first.get((name, "resolved"), 0) - lifted_at
        resolved = f"resolved {resolve:4.0f} s after it was lifted" \
            if (name, "resolved") in first else "still firing (a ticket: long windows)"
        print(f"  {name:32} fired {fire:4.0f} s after the fault started, {resolved}")
    print(f"fault held {lifted_at - fault_at:.0f} s; page alerts resolved "
          f"{done_at - lifted_at:.0f} s after; Prometheus still firing: "
          f"{sorted(firing_in_prometheus())}")
    assert fired == EXPECTED, f"unexpected alerts reached the webhook: {sorted(fired - EXPECTED)}"
    assert traffic.statuses.get(201, 0) > 0 and not any(
        s >= 500 for s in traffic.statuses), f"the fault must not cost a 5xx: {traffic.statuses}"


def test_an_alert_is_silenced_with_amtool():
    """README's command to silence an alert, on the real Alertmanager: amtool adds the silence,
    the API lists it as active, amtool expires it."""
    if COMPOSE:
        pytest.skip("natively only (compose: the same command through docker compose exec)")
    amtool = os.environ.get("AMTOOL")
    assert amtool and os.path.exists(amtool), "AMTOOL (set by scripts/stack-test.sh) is missing"
    base = [amtool, f"--alertmanager.url={ALERTMANAGER}"]
    out = subprocess.run([*base, "silence", "add", "alertname=CircuitBreakerOpen",
                          "--duration=1h", "--comment=stack test: planned service-b maintenance"],
                         capture_output=True, text=True, check=True).stdout.strip()
    active = [s for s in get_json(f"{ALERTMANAGER}/api/v2/silences")
              if s["id"] == out and s["status"]["state"] == "active"]
    assert active, f"silence {out!r} is not active"
    assert {"name": "alertname", "value": "CircuitBreakerOpen", "isRegex": False,
            "isEqual": True} in active[0]["matchers"], active[0]
    subprocess.run([*base, "silence", "expire", out], check=True)
    state = next(s["status"]["state"] for s in get_json(f"{ALERTMANAGER}/api/v2/silences")
                 if s["id"] == out)
    assert state == "expired", state


def test_every_collector_metric_the_alerts_read_is_one_the_built_collector_has():
    """The collector renames its own metrics between releases; an alert on a name it no longer
    has stays silent forever. Each otelcol_* name in the rules must be on the running
    collector's /metrics or, for counters created at their first failure, in its binary."""
    if COMPOSE:
        pytest.skip("natively only: reads the collector binary the native stack runs")
    names = set()
    for rules in (ROOT / "observability" / "rules").glob("*.rules.yml"):
        names |= set(re.findall(r"\botelcol_[a-z_]+", rules.read_text()))
    assert names, "no otelcol_* metric in the rules"
    status, _, text = http("GET", COLLECTOR_METRICS)
    assert status == 200, f"GET {COLLECTOR_METRICS}: {status}"
    exposed = set(re.findall(r"^(otelcol_[a-z_]+)", str(text), re.M))
    pid = (STATE / "observability" / "otel-collector.pid").read_text().strip()
    binary = Path(f"/proc/{pid}/exe").read_bytes()
    missing = []
    for name in sorted(names):
        base = re.sub(r"_bytes$", "", re.sub(r"_total$", "", name))
        if name not in exposed and base.encode() not in binary:
            missing.append(name)
    print(f"\n{len(names)} collector metrics in the rules: {len(names & exposed)} on /metrics, "
          f"the rest (created at their first failure) in the binary")
    assert not missing, f"metrics the built collector does not have: {missing}"
