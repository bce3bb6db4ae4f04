"""The real collector killed for a minute under steady traffic (reliability scenario 3, on the
collector binary and config that compose runs; crates/e2e/tests/reliability.rs runs the same
scenario against an in-test receiver).

What a user must see: no request fails because telemetry has nowhere to go; each service's
memory stays bounded while its exports fail; what was lost is counted
(`telemetry.export.dropped`, by signal, in Prometheus once the collector is back); the
CollectorDown alert reaches Alertmanager's receiver and resolves; export resumes by itself,
without restarting a service. Natively only: the test kills the collector process.

Runs last (pytest takes the files in name order): test_alerts.py's "nothing else fires" would
see CollectorDown, and test_stack.py's "every exemplar names a stored trace" would not hold
after it. A histogram bucket on /metrics keeps its exemplar until a new request replaces it, so
for a while after the outage a rarely hit bucket still names a trace the outage lost.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

import memory as mem
from backends import (COLLECTOR_METRICS, COMPOSE, GATEWAY, LOKI_SINK, SERVICES, STATE, TEMPO_SINK,
                      Traffic, alert_events, eventually, get_json, http,
                      jsonl, prom_query)

OUTAGE_S = 60  # the figure: long enough for every batch queue to fill and stay full
BEFORE_S = 20
# Memory a service may gain while every export fails: its batch queues (2,048 spans and 2,048
# log records at most) and the allocator's slack. A buffer without bound grows with the traffic
# instead; the figures printed show where each service stands.
GROWTH_BOUND_KIB = 16 * 1024
# What a collector outage must not fire: every other pipeline alert (the collector refusing or
# failing to send, a service's metrics unreachable, a breaker opening) and availability, which
# would mean requests failed. The latency and freshness SLO alerts are left out: the earlier
# files slow service-d and service-b on purpose, and those alerts' long windows still hold it.
MUST_STAY_SILENT = {"CollectorRefusingTelemetry", "CollectorExportFailing", "CollectorQueueFull",
                    "CollectorMemoryNearLimit", "ServiceMetricsDown", "ConsumerLagGrowing",
                    "CircuitBreakerOpen", "GatewayAvailabilityBudgetBurnFast",
                    "GatewayAvailabilityBudgetBurnSlow"}
COLLECTOR_HEALTH = "http://127.0.0.1:13133/"  # its health_check extension, as dev-stack.sh waits on
COLLECTOR_PID = STATE / "observability" / "otel-collector.pid"


def service_rss_kib() -> dict[str, int]:
    out = {}
    for name in SERVICES:
        pid = mem.read_pid(STATE / "services" / f"{name}.pid")
        rss = mem.status_kib(pid, "VmRSS") if pid else None
        if rss is not None:
            out[name] = rss
    return out


def kill_collector() -> tuple[list[str], dict[str, str], str]:
    """SIGKILLs the collector (no flush, no goodbye) and returns how it was started."""
    pid = mem.read_pid(COLLECTOR_PID)
    assert pid and "otelcol" in mem.cmdline(pid), f"no collector at {COLLECTOR_PID}"
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
    env = dict(item.decode().split("=", 1)
               for item in proc.joinpath("environ").read_bytes().split(b"\0") if b"=" in item)
    cwd = os.readlink(proc / "cwd")
    os.kill(pid, signal.SIGKILL)
    eventually("the collector gone", lambda: not Path(f"/proc/{pid}").exists(), 10, 0.2)
    return argv, env, cwd


def start_collector(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """Starts it again as scripts/dev-stack.sh did, so `dev-stack.sh down` stops it."""
    with open(Path(cwd) / "otel-collector.log", "ab") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    COLLECTOR_PID.write_text(f"{proc.pid}\n")

    def healthy():
        try:
            return http("GET", COLLECTOR_HEALTH, timeout=2)[0] == 200
        except OSError:  # not listening yet
            return False

    eventually("the collector healthy again", healthy, 60, 0.5)


def by_service(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("service", "")] = counts.get(r.get("service", ""), 0) + 1
    return counts


def latency_ms(answers, start: float, end: float) -> str:
    times = sorted(s * 1000 for at, _, _, s in answers if start <= at < end)
    if not times:
        return "no requests"
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (f"{len(times)} requests, p50 {statistics.median(times):.1f} ms, "
            f"p99 {p99:.1f} ms, worst {times[-1]:.1f} ms")


def test_collector_killed_for_a_minute_costs_requests_nothing():
    if COMPOSE:
        pytest.skip("natively only: kills the collector process")
    with Traffic("outage") as traffic:
        time.sleep(BEFORE_S)
        before_rss = service_rss_kib()
        argv, env, cwd = kill_collector()
        killed_at = time.time()
        peak_rss = dict(before_rss)
        half_rss: dict[str, int] = {}
        while time.time() - killed_at < OUTAGE_S:
            for name, rss in service_rss_kib().items():
                peak_rss[name] = max(peak_rss.get(name, 0), rss)
            if not half_rss and time.time() - killed_at >= OUTAGE_S / 2:
                half_rss = service_rss_kib()
            time.sleep(1)
        down_at_webhook = {(n, s) for at, n, s in alert_events() if at >= killed_at}
        end_rss = service_rss_kib()
        spans_before = by_service(jsonl(TEMPO_SINK / "spans.jsonl"))
        logs_before = by_service(jsonl(LOKI_SINK / "logs.jsonl"))
        start_collector(argv, env, cwd)
        restarted_at = time.time()

        # Export resumes by itself: new log records from every service that serves this
        # traffic (logs are not sampled), new spans (tail-sampled: from some service).
        serving = ["api-gateway", "service-a", "service-b", "service-c", "service-d"]

        def logs_resumed():
            now = by_service(jsonl(LOKI_SINK / "logs.jsonl"))
            behind = [s for s in serving if now.get(s, 0) <= logs_before.get(s, 0)]
            return not behind or None

        eventually("log records of every service after the restart", logs_resumed, 60)
        logs_at = time.time()
        eventually("spans after the restart",
                   lambda: sum(by_service(jsonl(TEMPO_SINK / "spans.jsonl")).values())
                   > sum(spans_before.values()), 60)
        spans_at = time.time()

        # What was lost is counted, per service and signal, and reaches Prometheus.
        def dropped():
            series = prom_query(
                'sum by (service_name, signal) ({__name__=~"telemetry_export_dropped.*"})')
            found = {(s["metric"].get("service_name", ""), s["metric"].get("signal", "")):
                     float(s["value"][1]) for s in series}
            return found if all(found.get((j, "traces"), 0) > 0 for j in serving) else None

        dropped_counts = eventually("telemetry.export.dropped of every service in Prometheus",
                                    dropped, 90, 2)

        def down_resolved():
            seen = {(n, s) for at, n, s in alert_events() if at >= killed_at}
            return seen if ("CollectorDown", "resolved") in seen else None

        alerts = eventually("CollectorDown resolved at the webhook", down_resolved, 120, 2)
        after_end = time.time()

    answers = list(traffic.answers)
    failed = [(round(at - killed_at, 1), kind, status) for at, kind, status, _ in answers
              if status not in (200, 201)]
    orders = list(traffic.order_ids)

    def all_fulfilled():
        pending = [o for o in orders
                   if get_json(f"{GATEWAY}/api/orders/{o}").get("status") != "fulfilled"]
        return not pending or None

    eventually("every order accepted during the test fulfilled", all_fulfilled, 60, 2)

    print(f"\ncollector SIGKILLed for {OUTAGE_S} s under steady traffic: {dict(traffic.statuses)}")
    print(f"  before  {latency_ms(answers, killed_at - BEFORE_S, killed_at)}")
    print(f"  during  {latency_ms(answers, killed_at, restarted_at)}")
    print(f"  after   {latency_ms(answers, restarted_at, after_end)}")
    print(f"  export resumed by itself (no service restarted): log records of every service "
          f"at the sink {logs_at - restarted_at:.1f} s after the restart, spans "
          f"{spans_at - restarted_at:.1f} s (after the tail sampler's decision wait)")
    for name in SERVICES:
        b, h, e, p = (before_rss.get(name, 0), half_rss.get(name, 0), end_rss.get(name, 0),
                      peak_rss.get(name, 0))
        print(f"  {name:12} RSS {b} KiB before, {h - b:+} KiB at {OUTAGE_S // 2} s, "
              f"{e - b:+} KiB at {OUTAGE_S} s, peak {p - b:+} KiB")
    print(f"  dropped, counted by each service: {dropped_counts}")
    print(f"  alerts at the webhook: during {sorted(down_at_webhook)}; in all {sorted(alerts)}")

    assert not failed, f"requests failed while the collector was down: {failed[:20]}"
    assert traffic.statuses.get(201, 0) > 0, dict(traffic.statuses)
    grown = {n: peak_rss[n] - before_rss[n] for n in before_rss
             if peak_rss[n] - before_rss[n] > GROWTH_BOUND_KIB}
    assert not grown, f"memory grew beyond {GROWTH_BOUND_KIB} KiB while exports failed: {grown}"
    assert ("CollectorDown", "firing") in down_at_webhook, (
        f"CollectorDown did not reach the webhook within the {OUTAGE_S} s outage: {down_at_webhook}")
    unexpected = {n for n, s in alerts if s == "firing"} & MUST_STAY_SILENT
    assert not unexpected, f"the outage fired more than CollectorDown: {sorted(unexpected)}"
    status, _, _ = http("GET", COLLECTOR_METRICS)
    assert status == 200, "the restarted collector serves its own metrics"
