#!/usr/bin/env python3
"""Writes the demo's Prometheus rules (observability/rules/*.rules.yml) from one description:
three SLOs with their recording rules and multi-window, multi-burn-rate alerts (the SRE
workbook's fast and slow pairs), and the alerts on the telemetry pipeline and the dependencies.

    python3 scripts/observability/gen_rules.py                  # (re)write the rule files
    python3 scripts/observability/gen_rules.py --check          # fail if they differ from this
    python3 scripts/observability/gen_rules.py --time-scale 20 --out DIR
        # the same rules with every window and `for` 20 times shorter, for the stack test: a
        # fault of a minute then burns an hour's budget, and alerts fire and resolve in minutes

The rule files are the source Prometheus loads; edit here, run it, commit both. Recording rule
names keep the production window (`slo:error_ratio:rate1h` is over 3 minutes at scale 20), so
the alerts and dashboards read the same names at any scale. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "observability" / "rules"
GRAFANA = "http://localhost:3000"  # where compose publishes Grafana

HTTP = "http_server_request_duration_seconds"
GATEWAY = 'job="api-gateway"'


@dataclass(frozen=True)
class Slo:
    name: str
    service: str
    objective: float  # share of good events
    what: str  # one sentence for the alert's summary
    errors: str  # PromQL with WINDOW where the rate window goes
    total: str
    look_first: str  # the description's "look here first"
    panel: tuple[str, str]  # (dashboard uid, panel title) the alert links to


SLOS = [
    Slo("gateway-availability", "api-gateway", 0.995,
        "Gateway answers without a 5xx",
        f'sum(rate({HTTP}_count{{{GATEWAY}, http_response_status_code=~"5.."}}[WINDOW]))',
        f"sum(rate({HTTP}_count{{{GATEWAY}}}[WINDOW]))",
        "Which route and status: the overview's \"Responses by status code\"; then "
        "\"Recent error traces\" for a failing request's trace and its logs.",
        ("otel-demo-overview", "Error ratio (5xx) by service")),
    # 500 ms: a bucket bound of the HTTP histograms, the tail sampler's "slow" (traces over it
    # are always kept, so every slow request has its trace), and well above a healthy gateway's
    # p99 (tens of milliseconds here); a shop page that takes longer feels broken.
    Slo("gateway-latency", "api-gateway", 0.99,
        "Gateway answers within 500 ms",
        f"(sum(rate({HTTP}_count{{{GATEWAY}}}[WINDOW])) - "
        f'sum(rate({HTTP}_bucket{{{GATEWAY}, le="0.5"}}[WINDOW])))',
        f"sum(rate({HTTP}_count{{{GATEWAY}}}[WINDOW]))",
        "Which route is slow: the overview's \"p95 latency by route\"; click an exemplar dot "
        "on \"Latency p50 / p95 / p99 by service\" to open a slow request's trace and see "
        "which hop took the time.",
        ("otel-demo-overview", "Latency p50 / p95 / p99 by service")),
    # 10 s: a healthy order is fulfilled in well under a second; ten seconds covers a Kafka
    # hiccup and a few outbox retries, and is a bucket bound of the fulfilment histogram.
    # Counted when an order is fulfilled: an order stuck for good shows as consumer lag or
    # outbox depth instead (their own alerts).
    Slo("order-freshness", "service-c", 0.99,
        "Accepted orders are fulfilled within 10 s",
        "(sum(rate(orders_fulfilment_duration_seconds_count[WINDOW])) - "
        'sum(rate(orders_fulfilment_duration_seconds_bucket{le="10"}[WINDOW])))',
        "sum(rate(orders_fulfilment_duration_seconds_count[WINDOW]))",
        "Where orders wait: the order pipeline's \"Outbox depth\" (service-b or Kafka "
        "unavailable) and \"Consumer lag by partition\" (service-c behind); the resilience "
        "dashboard shows whether the breaker to service-b is open.",
        ("otel-demo-orders", "Order accepted → fulfilled (p50 / p95)")),
]

# (window, rule name suffix): every window a burn-rate alert reads.
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]

# The SRE workbook's pairs: (long window, short window, burn rate). Fast pairs page: at 14.4x
# the budget of 30 days is gone in 2 days, at 6x in 5. Slow pairs open a ticket.
FAST = [("1h", "5m", 14.4), ("6h", "30m", 6)]
SLOW = [("1d", "2h", 3), ("3d", "6h", 1)]

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    return int(duration[:-1]) * SECONDS[duration[-1]]


def scaled(duration: str, scale: int) -> str:
    """A Prometheus duration `scale` times shorter, in whole seconds."""
    s = max(1, seconds(duration) // scale)
    for unit in ("d", "h", "m"):
        if s % SECONDS[unit] == 0:
            return f"{s // SECONDS[unit]}{unit}"
    return f"{s}s"


def dashboard_link(uid: str, title: str) -> str:
    """A link to one panel, its id looked up in the dashboards this repository provisions."""
    path = ROOT / "grafana" / "dashboards"
    for f in sorted(path.glob("*.json")):
        dash = json.loads(f.read_text(encoding="utf-8"))
        if dash.get("uid") != uid:
            continue
        panels = [p for p in dash["panels"] for p in [p, *p.get("panels", [])]]
        for p in panels:
            if p.get("title") == title:
                return f"{GRAFANA}/d/{uid}?viewPanel=panel-{p['id']}"
        raise SystemExit(f"gen_rules: dashboard {uid} has no panel titled {title!r}")
    raise SystemExit(f"gen_rules: no dashboard with uid {uid!r} in {path}")


# --------------------------------------------------------------------------- rules


def slo_rules(scale: int) -> list[dict]:
    recording = []
    for slo in SLOS:
        labels = {"slo": slo.name, "service": slo.service}
        recording.append({"record": "slo:objective:ratio", "expr": f"vector({slo.objective})",
                          "labels": labels})
        for w in WINDOWS:
            win = scaled(w, scale)
            errors, total = (q.replace("WINDOW", win) for q in (slo.errors, slo.total))
            # `or ... * 0`: 0, not "no data", while there is traffic but no error yet.
            recording.append({"record": f"slo:error_ratio:rate{w}",
                              "expr": f"(\n  {errors}\n  or {total} * 0\n)\n/\n{total}",
                              "labels": labels})
        # Counts for the dashboard's "budget left over the range" (sum_over_time of these).
        recording.append({"record": "slo:errors:rate5m",
                          "expr": slo.errors.replace("WINDOW", scaled("5m", scale)),
                          "labels": labels})
        recording.append({"record": "slo:events:rate5m",
                          "expr": slo.total.replace("WINDOW", scaled("5m", scale)),
                          "labels": labels})

    alerts = []
    for slo in SLOS:
        budget = round(1 - slo.objective, 6)
        sel = f'{{slo="{slo.name}"}}'
        camel = "".join(part.capitalize() for part in slo.name.split("-"))
        for speed, pairs, severity, wait in (("Fast", FAST, "page", "2m"),
                                             ("Slow", SLOW, "ticket", "15m")):
            conditions = [
                f"(slo:error_ratio:rate{long}{sel} > {burn} * {budget}\n"
                f" and slo:error_ratio:rate{short}{sel} > {burn} * {budget})"
                for long, short, burn in pairs]
            windows = ", or ".join(f"over {long} and {short} above {burn} times the budget"
                                   for long, short, burn in pairs)
            alerts.append({
                "alert": f"{camel}BudgetBurn{speed}",
                "expr": "\nor\n".join(conditions),
                "for": scaled(wait, scale),
                "labels": {"severity": severity, "slo": slo.name, "service": slo.service},
                "annotations": {
                    "summary": f"The error budget of \"{slo.what}\" ({slo.objective:.1%}) "
                               f"burns {'fast' if speed == 'Fast' else 'steadily'}",
                    "description": (
                        f"SLO {slo.name}: the error ratio is {windows} ({budget:.1%}). "
                        f"Look first: {slo.look_first}"),
                    "dashboard": dashboard_link(*slo.panel),
                },
            })
    return [{"name": "slo-recording", "rules": recording},
            {"name": "slo-alerts", "rules": alerts}]


COLLECTOR = 'job="otel-collector"'
SIGNALS = ("spans", "metric_points", "log_records")


def pipeline_rules(scale: int) -> list[dict]:
    w5, w10 = scaled("5m", scale), scaled("10m", scale)

    def alert(name: str, expr: str, wait: str, severity: str, summary: str, description: str,
              panel: tuple[str, str], labels: dict | None = None) -> dict:
        return {"alert": name, "expr": expr, "for": scaled(wait, scale),
                "labels": {"severity": severity, **(labels or {})},
                "annotations": {"summary": summary, "description": description,
                                "dashboard": dashboard_link(*panel)}}

    def per_signal(metric: str) -> str:
        return "\nor\n".join(
            f'sum by (job, data_type) (label_replace(rate({metric}_{s}_total{{{COLLECTOR}}}'
            f'[{w5}]), "data_type", "{s}", "", "")) > 0' for s in SIGNALS)

    rules = [
        alert("CollectorRefusingTelemetry", per_signal("otelcol_receiver_refused"), "2m", "ticket",
              "The collector refuses {{ $labels.data_type }} from the services",
              "Its receivers push back, which the memory limiter does before the heap passes "
              "its limit; the SDKs retry, then drop. Look first: \"Collector memory (RSS)\" and "
              "the exporter queues on the collector dashboard: a slow backend fills the queues.",
              ("otel-demo-collector", "Collector memory (RSS)")),
        alert("CollectorExportFailing", per_signal("otelcol_exporter_send_failed"), "2m", "ticket",
              "The collector cannot send {{ $labels.data_type }} to its backend",
              "An exporter's sends fail after retries, so that telemetry is lost. Look first: "
              "the collector's log (`docker compose logs otel-collector`) names the exporter and "
              "the error (connection refused, 4xx from Loki, ...); then whether that backend is up.",
              ("otel-demo-collector", "Exporters: sent / failed spans")),
        alert("CollectorQueueFull", per_signal("otelcol_exporter_enqueue_failed"), "2m", "ticket",
              "The collector drops {{ $labels.data_type }}: an exporter queue is full",
              "The backend takes less than the services send, and the sending queue overflows. "
              "Look first: \"Exporter queue size vs capacity\" for which exporter, then that "
              "backend's health.",
              ("otel-demo-collector", "Exporter queue size vs capacity")),
        # 272 MiB: the memory limiter's limit in compose (OTEL_MEMORY_LIMIT_MIB); above 90% of
        # it the limiter starts refusing data.
        alert("CollectorMemoryNearLimit",
              f"max by (job, instance) (otelcol_process_memory_rss_bytes{{{COLLECTOR}}}) "
              "> 0.9 * 272 * 1024 * 1024", "5m", "ticket",
              "The collector's memory is near its limit",
              "Above its memory limiter's limit (272 MiB in compose) it refuses data. Look first: "
              "\"Exporter queue size vs capacity\" (a stuck backend keeps data in memory) and the "
              "tail sampler's trace count.",
              ("otel-demo-collector", "Collector memory (RSS)")),
        alert("ServiceMetricsDown", 'up{job=~"api-gateway|service-a|service-b|service-c|service-d"} == 0',
              "1m", "page",
              "{{ $labels.job }}'s /metrics cannot be scraped",
              "The collector's scrape of the service fails: the service is down or not answering. "
              "Its other alerts are inhibited meanwhile. Look first: `docker compose ps` and the "
              "service's log.",
              ("otel-demo-overview", "Request rate by service"), {"service": "{{ $labels.job }}"}),
        alert("CollectorDown", f"up{{{COLLECTOR}}} == 0", "1m", "page",
              "Prometheus cannot scrape the collector",
              "No telemetry reaches the backends while the collector is down; the services drop "
              "and count what they cannot export. Look first: `docker compose ps otel-collector` "
              "and its log (a config error stops it at startup with the reason).",
              ("otel-demo-collector", "Collector CPU")),
        alert("ConsumerLagGrowing",
              "sum by (job) (messaging_kafka_consumer_lag) > 100\n"
              f"and sum by (job) (deriv(messaging_kafka_consumer_lag[{w10}])) > 0", "5m", "ticket",
              "service-c falls behind the order-events topic",
              "More than 100 messages wait and the backlog grows. Look first: \"Message "
              "processing p95 by outcome\" (slow processing) and service-c's log.",
              ("otel-demo-orders", "Consumer lag by partition"), {"service": "service-c"}),
        alert("MessagesDeadLettered",
              f'sum by (job) (increase(messaging_process_messages_total{{outcome="dead_lettered"}}[{w10}])) > 0',
              "0s", "ticket",
              "Messages went to the dead-letter topic",
              "service-c could not process them (bad payload, missing headers); each carries its "
              "reason in the DLQ headers and in a service-c log line with the trace id. Look "
              "first: service-c's warnings in the overview's \"Logs\".",
              ("otel-demo-orders", "Dead-lettered messages"), {"service": "service-c"}),
        alert("CircuitBreakerOpen", "max by (job, breaker) (circuit_breaker_state) == 1", "30s",
              "ticket",
              "{{ $labels.job }}'s breaker to {{ $labels.breaker }} is open",
              "Calls to {{ $labels.breaker }} fail fast; service-a keeps order events in its "
              "outbox meanwhile, so orders are accepted but fulfilled late (the order-freshness "
              "alerts follow once they are). Look first: {{ $labels.breaker }}'s health and the "
              "\"service-a → service-b calls by outcome\" panel.",
              ("otel-demo-resilience", "Breaker state over time"),
              {"service": "{{ $labels.job }}"}),
    ]
    return [{"name": "pipeline-and-dependencies", "rules": rules}]


# --------------------------------------------------------------------------- output


FILES = {
    "slo.rules.yml": (slo_rules, "SLO recording rules and multi-window, multi-burn-rate alerts"),
    "pipeline.rules.yml": (pipeline_rules, "alerts on the telemetry pipeline and the dependencies"),
}


def render(groups: list[dict], about: str, scale: int) -> str:
    """YAML by hand: strings as JSON strings (which YAML reads verbatim), long expressions as
    block scalars."""
    head = [f"# Prometheus rules: {about}.",
            "# Generated by scripts/observability/gen_rules.py: edit there, run it, commit both."]
    if scale != 1:
        head.append(f"# Time scale 1/{scale}: every window and `for` {scale} times shorter "
                    "(the stack test's copy).")
    out = [*head, "groups:"]
    for g in groups:
        out.append(f"  - name: {json.dumps(g['name'])}")
        out.append("    rules:")
        for r in g["rules"]:
            kind = "record" if "record" in r else "alert"
            out.append(f"      - {kind}: {json.dumps(r[kind])}")
            if "\n" in r["expr"]:  # a block scalar keeps a long expression readable
                out.append("        expr: |-")
                out.extend(f"          {line}" for line in r["expr"].split("\n"))
            else:
                out.append(f"        expr: {json.dumps(r['expr'], ensure_ascii=False)}")
            if "for" in r:
                out.append(f"        for: {r['for']}")
            for key in ("labels", "annotations"):
                if r.get(key):
                    out.append(f"        {key}:")
                    for k, v in r[key].items():
                        out.append(f"          {k}: {json.dumps(v, ensure_ascii=False)}")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--time-scale", type=int, default=1, metavar="N",
                    help="every window and `for` N times shorter (default 1)")
    args = ap.parse_args()
    if args.time_scale < 1:
        ap.error("--time-scale must be at least 1")
    stale = []
    for name, (build, about) in FILES.items():
        text = render(build(args.time_scale), about, args.time_scale)
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("rule files differ from scripts/observability/gen_rules.py (run it and commit):",
              *stale, sep="\n  ", file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(FILES)} rule files match scripts/observability/gen_rules.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
