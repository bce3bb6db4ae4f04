"""The stack test: the compose configs, proven on the real collector and Prometheus.

Runs against `scripts/dev-stack.sh up --observability` (the services, Postgres, Kafka, and the
collector and Prometheus natively on the files docker-compose.yml mounts, with otlp-sink where
Tempo and Loki receive) and asserts on what Grafana would show. `scripts/test.sh` starts the
stack and runs this file; by hand:

    scripts/dev-stack.sh up --observability
    python3 -m pytest tests/stack -v               (any Python 3.10+ with pytest)
    scripts/dev-stack.sh down

The same file runs against `docker compose up` (STACK_TARGET=compose, see backends.py and
README "The stack test against Docker Compose"): then traces and logs are read through
Tempo's and Loki's own APIs, and the checks that need Tempo's metrics generator run too.
Natively those are skipped with the reason: Tempo and Loki are AGPL and never built here.
Natively it also measures every process's peak memory under that load (memory.py) and writes
it to $OTEL_DEMO_STATE/stack-test-memory.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

import memory as mem
from backends import (CLIENT, COMPOSE, CONSUMER, LOAD_RUNS, LOKI_SINK, PRODUCER, ROOT, SERVER,
                      SERVICES, GATEWAY, TraceStore, alert_events, clear_faults, collector_counters,
                      eventually, get_json, http, load, loki_lines, produce_poison, prom_exemplars,
                      prom_query, prom_query_range, prom_value, set_fault, sink_log_records,
                      sink_requests, trace_id_of)

# The collector's tail sampler decides 10 s after a trace's first span; then batch + export.
DECISION_WAIT_S = 10
SETTLE_S = DECISION_WAIT_S + 10
# The services push OTLP metrics every 15 s (OTEL_METRIC_EXPORT_INTERVAL in dev-stack.sh and
# compose); a rate needs two pushes of a series.
OTLP_METRIC_INTERVAL_S = 15


@pytest.fixture(scope="module")
def store() -> TraceStore:
    return TraceStore()


@pytest.fixture(scope="module")
def run(store, memory):
    """Drives the whole scenario once: the load tool's smoke, load and chaos scenarios (each
    with its thresholds; chaos fails service-b and slows service-d past the tail sampler's
    500 ms), then the third party failing, a poison message and one injected 503, then one
    order followed to fulfilment. Returns what the checks need."""
    started = time.time()
    counters_before = collector_counters("otelcol_")
    load("smoke")
    # A clean load run: its thresholds (p95/p99 latency, error rate, checks) must hold.
    load("load", {"LOAD_DURATION": "20s", "LOAD_VUS": "5"})
    time.sleep(6)  # the SDKs' batch span processors export every 5 s
    after_load = collector_counters("otelcol_")

    # service-b fails every event (the breaker opens, events wait in the outbox, orders still
    # get 201), then service-d answers 600 ms late; the canary order must end fulfilled.
    load("chaos", {"CHAOS_DURATION": "45s", "SLOW_MS": "600", "CHAOS_VUS": "3"})
    # The third party fails: service-a retries it twice, then answers 503 naming it.
    set_fault("third-party-stub", {"error_rate": 1.0})
    status, _, body = http("POST", f"{GATEWAY}/api/orders", {
        "customer_id": "stack-3p", "items": [{"sku": "sku-filter", "quantity": 1}]})
    clear_faults("third-party-stub")
    assert status == 503, f"a failing third party must give 503: {status} {body}"
    # A poison message: service-c dead-letters it and moves on.
    produce_poison("poison", "{not json")
    # One request that fails on purpose (service-d answers 503 for every route).
    set_fault("service-d", {"error_rate": 1.0})
    status, headers, body = http("GET", f"{GATEWAY}/api/products")
    clear_faults("service-d")
    assert status >= 500, f"injected fault did not surface: {status} {body}"
    error_trace = trace_id_of(headers)

    # The flow works again after the faults: one order followed to fulfilment.
    status, _, order = http("POST", f"{GATEWAY}/api/orders", {
        "customer_id": f"stack-{uuid.uuid4().hex[:8]}",
        "items": [{"sku": "sku-espresso", "quantity": 1}]})
    assert status == 201, f"{status} {order}"
    eventually("our order fulfilled", lambda: get_json(
        f"{GATEWAY}/api/orders/{order['id']}").get("status") == "fulfilled", 60)
    # Let the tail sampler decide, the exporters flush, Prometheus scrape and Tempo's
    # generator collect.
    time.sleep(SETTLE_S)
    return {"start": started - 60, "error_trace": error_trace,
            "counters_before": counters_before, "after_load": after_load}


def now() -> float:
    return time.time() + 60


# ---------------------------------------------------------------- 2. one trace, five services

def check_order_trace(spans) -> list[str]:
    """Problems with the anatomy of one order trace (child mode); [] when it is whole."""
    problems = []
    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    if missing := set(SERVICES) - services:
        problems.append(f"no spans of {sorted(missing)}")
    # One entry span, the gateway's server span: a root, or the child of the load tool's
    # traceparent (a remote parent, never exported). Any other span without its parent in
    # the trace is an orphan.
    entries = [s for s in spans if s.parent_span_id not in by_id]
    if len(entries) != 1 or entries[0].service != "api-gateway" or entries[0].kind != SERVER:
        problems.append("want one entry, the gateway's server span: "
                        f"{[(e.service, e.name) for e in entries]}")
    # Every server span of a service below the gateway has a CLIENT parent in another service.
    for s in spans:
        if s.kind == SERVER and s.parent_span_id in by_id:
            parent = by_id[s.parent_span_id]
            if parent.kind != CLIENT or parent.service == s.service:
                problems.append(f"{s.service} {s.name!r}: parent {parent.service} {parent.name!r} kind {parent.kind}")
    # The Kafka hop: service-c's consumer span is a child of service-b's producer span.
    consumers = [s for s in spans if s.service == "service-c" and s.kind == CONSUMER]
    if not consumers:
        problems.append("no service-c CONSUMER span")
    for c in consumers:
        p = by_id.get(c.parent_span_id)
        if not p or p.service != "service-b" or p.kind != PRODUCER:
            problems.append(f"consumer {c.name!r} parent is not service-b's producer span")
        elif p.attributes.get("messaging.system") != "kafka":
            problems.append(f"producer span without messaging.system=kafka: {p.attributes}")
    return problems


def find_whole_order_trace(store, run):
    if store.tempo:
        query = ('{ resource.service.name = "api-gateway" && kind = server } >> '
                 '{ resource.service.name = "service-c" && kind = consumer }')
        candidates = eventually("a TraceQL match gateway >> service-c consumer",
                                lambda: store.search(query, run["start"], now()), 30)
    else:
        candidates = store.traces_through(SERVICES)
    assert candidates, "no exported trace holds spans of all five services"
    reports = {}
    for trace_id in candidates[:20]:
        spans = store.trace(trace_id)
        problems = check_order_trace(spans)
        if not problems:
            return trace_id, spans
        reports[trace_id] = problems
    raise AssertionError(f"no whole order trace among {len(candidates)} candidates: {reports}")


# One order, span by span: (service, kind, name) -> count. 23 spans; a retry or a
# missing hop changes it.
INTERNAL = 1
ORDER_TRACE = Counter({
    ("api-gateway", SERVER, "POST /api/orders"): 1,
    ("api-gateway", CLIENT, "POST"): 1,                      # -> service-a
    ("service-a", SERVER, "POST /orders"): 1,
    ("service-a", CLIENT, "POST"): 3,                        # service-d, third party, service-b
    ("service-a", CLIENT, "INSERT orders"): 1,               # the order, its lines and its
    ("service-a", CLIENT, "INSERT order_items"): 1,          # event in one transaction
    ("service-a", CLIENT, "INSERT outbox"): 1,
    ("service-a", CLIENT, "UPDATE outbox"): 1,               # event delivered
    ("service-a", CLIENT, "SELECT orders"): 2,               # read back, twice: create, fulfil
    ("service-a", CLIENT, "SELECT order_items"): 2,
    ("service-a", SERVER, "POST /orders/{id}/fulfil"): 1,    # called by service-c
    ("service-a", CLIENT, "UPDATE orders"): 1,
    ("service-b", SERVER, "POST /events"): 1,
    ("service-b", PRODUCER, "send order-events"): 1,
    ("service-c", CONSUMER, "process order-events"): 1,
    ("service-c", CLIENT, "INSERT processed_events"): 1,     # idempotency record
    ("service-c", CLIENT, "POST"): 1,                        # -> service-a fulfil
    ("service-d", SERVER, "POST /stock/check"): 1,
    ("service-d", INTERNAL, "catalog.check"): 1,
})


def test_trace_spans_five_services_and_the_kafka_hop(store, run):
    trace_id, spans = find_whole_order_trace(store, run)
    got = Counter((s.service, s.kind, s.name) for s in spans)
    print(f"\n{store.kind}: trace {trace_id}: {len(spans)} spans")
    assert len(spans) == len({s.span_id for s in spans}), "duplicate span ids"
    assert got == ORDER_TRACE, (f"span anatomy differs: missing {dict(ORDER_TRACE - got)}, "
                                f"unexpected {dict(got - ORDER_TRACE)}")


def test_load_tool_requests_carry_their_traceparent(store, run):
    """Load shows up in traces: gateway server spans continue the load tool's trace."""
    if store.tempo:
        pytest.skip("checked on the exported spans natively; Tempo has no 'parent not exported' query")
    entries = [s for s in store.sink_spans() if s.service == "api-gateway" and s.kind == SERVER]
    continued = [s for s in entries if s.parent_span_id]
    print(f"\n{len(continued)}/{len(entries)} exported gateway server spans continue a caller's traceparent")
    assert continued, "no gateway server span has a remote parent: the load tool sent no traceparent"


# ---------------------------------------------------------------- 3. logs of the same trace

def test_loki_receives_every_services_logs_with_trace_context(store, run):
    """What Loki is sent (natively: what reaches Loki's address): log records of every
    service, over OTLP/HTTP on Loki's path, compressed, with their resource and, for a whole
    order, the trace and span ids of at least three services."""
    if COMPOSE:
        pytest.skip("natively only: the otlp-sink records the export calls; Loki's API is checked below")
    trace_id, spans = find_whole_order_trace(store, run)
    records = eventually("log records in Loki's sink", sink_log_records, 30)
    by_service = Counter(r["service"] for r in records)
    assert set(SERVICES) <= set(by_service), f"log records by service: {dict(by_service)}"
    for r in records:
        assert r["resource"].get("service.name") == r["service"], r
        assert r["resource"].get("telemetry.sdk.language") == "rust", r
    ours = [r for r in records if r["trace_id"] == trace_id]
    span_ids = {s.span_id for s in spans}
    assert len({r["service"] for r in ours}) >= 3, f"trace {trace_id}: {ours[:5]}"
    assert all(r["span_id"] in span_ids for r in ours), \
        f"log records of trace {trace_id} name spans outside it: {[r['span_id'] for r in ours]}"
    calls = sink_requests(LOKI_SINK)
    shapes = Counter((c["signal"], c["path"], c["encoding"], c["transport"]) for c in calls)
    print(f"\n{len(records)} log records {dict(by_service)}; export calls {dict(shapes)}")
    assert set(shapes) == {("logs", "/otlp/v1/logs", "gzip", "http/protobuf")}, shapes


def test_loki_has_logs_of_three_services_for_one_trace(store, run):
    if not COMPOSE:
        pytest.skip("needs Loki's API (STACK_TARGET=compose); natively the test above reads "
                    "what the collector sent to Loki's address")
    trace_id, _ = find_whole_order_trace(store, run)

    def services_logging():
        lines = loki_lines(f'{{service_name=~".+"}} | trace_id="{trace_id}"', run["start"], now())
        services = {line["labels"].get("service_name") for line in lines}
        return services if len(services) >= 3 else None

    services = eventually(f"log lines of three services for trace {trace_id} in Loki",
                          services_logging, 30)
    assert services <= set(SERVICES), services
    # trace_id is structured metadata, not a label (an index label per trace would explode).
    lines = loki_lines(f'{{service_name="service-a"}} | trace_id="{trace_id}"', run["start"], now())
    assert lines, "no service-a line for the trace"
    assert "trace_id" not in lines[0]["labels"], f"trace_id is a stream label: {lines[0]['labels']}"
    assert lines[0]["metadata"].get("trace_id") == trace_id, lines[0]


# ---------------------------------------------------------------- 4. exemplars resolve

# The fewest distinct traces the run's exemplars must name, so the check below cannot pass on
# an empty answer; the services' /metrics alone record dozens.
MIN_EXEMPLAR_TRACES = 5


def exemplar_trace_id(labels: dict) -> str | None:
    """The trace an exemplar names: `trace_id` (Prometheus' OTLP receiver: the services'
    /metrics through the collector, any OTLP source) or `traceID` (Tempo's generator, remote
    written, hex without leading zeros); None when it names none."""
    if "trace_id" in labels:
        return labels["trace_id"].lower()
    if "traceID" in labels:
        return labels["traceID"].lower().rjust(32, "0")
    return None


def test_exemplars_point_at_kept_traces(store, run):
    """EVERY exemplar Prometheus stored during the run, whatever its metric or source, names a
    trace the trace store holds: Grafana offers exemplar dots on any histogram, and a dot whose
    trace was sampled away leads nowhere (as span_metrics' would: it runs before sampling)."""
    end = time.time() - SETTLE_S  # younger exemplars may still wait for the sampling decision
    data = prom_exemplars('{__name__=~".+"}', run["start"], end)
    per_metric: dict[str, dict] = {}
    for series in data:
        name = series["seriesLabels"].get("__name__", "?")
        entry = per_metric.setdefault(name, {"exemplars": 0, "traces": set(), "no_trace": 0})
        for e in series["exemplars"]:
            entry["exemplars"] += 1
            trace_id = exemplar_trace_id(e["labels"])
            if trace_id:
                entry["traces"].add(trace_id)
            else:
                entry["no_trace"] += 1
    all_traces = set().union(*(e["traces"] for e in per_metric.values()))
    missing = set(store.missing(all_traces))
    summary = {name: {"exemplars": e["exemplars"], "traces": len(e["traces"]),
                      "not stored": len(e["traces"] & missing), "naming no trace": e["no_trace"]}
               for name, e in sorted(per_metric.items())}
    print(f"\nexemplars stored by Prometheus during the run, by metric ({store.kind} checked):")
    for name, counts in summary.items():
        print(f"  {name}: {counts}")
    assert len(all_traces) >= MIN_EXEMPLAR_TRACES, \
        f"too few exemplar traces ({len(all_traces)}): {summary} {data[:3]}"
    assert "http_server_request_duration_seconds_bucket" in per_metric, \
        f"no exemplars from the services' /metrics: {summary}"
    no_trace = {n: c["naming no trace"] for n, c in summary.items() if c["naming no trace"]}
    assert not no_trace, f"exemplars without trace_id or traceID: {no_trace}; by metric: {summary}"
    assert not missing, (f"{len(missing)}/{len(all_traces)} exemplar trace ids not in {store.kind} "
                         f"(e.g. {sorted(missing)[:5]}); by metric: {summary}")
    print(f"{len(all_traces)} exemplar trace ids, all in {store.kind}")


NO_TEMPO = "needs Tempo's metrics generator (STACK_TARGET=compose); Tempo is AGPL and not built here"
NO_SERVICE_GRAPH = ("needs the collector's service_graph connector (compose layers it on, see "
                    "observability/otel-collector.service-graph.yaml; it cannot be built here)")


def test_tempo_generator_exemplars_resolve(store, run):
    if not store.tempo:
        pytest.skip(NO_TEMPO)
    data = eventually("exemplars on Tempo's span metrics", lambda: prom_exemplars(
        'traces_spanmetrics_latency_bucket{source="tempo"}', run["start"], now()), 60)
    trace_ids = {e["labels"]["traceID"] for s in data for e in s["exemplars"] if "traceID" in e["labels"]}
    assert trace_ids, data[:2]
    missing = [t for t in list(trace_ids)[:20] if not store.has(t.rjust(32, "0"))]
    assert not missing, missing


# ---------------------------------------------------------------- 5. service graph

EDGES = [("api-gateway", "service-a"), ("service-a", "service-d"), ("service-a", "service-b"),
         ("service-b", "service-c")]


def test_service_graph_edges_have_one_writer(store, run):
    """The collector writes the graph from every span; nothing else may write the same names,
    or Grafana's service graph (which reads them unfiltered) adds the writers up."""
    if not COMPOSE:
        pytest.skip(NO_SERVICE_GRAPH)
    for client, server in EDGES:
        expr = (f'sum(traces_service_graph_request_total{{source="collector",'
                f'client="{client}",server="{server}"}})')
        value = eventually(f"edge {client} -> {server}", lambda: prom_value(expr), 45, 3)
        assert value > 0, expr
    others = prom_query('count by (source) (traces_service_graph_request_total{source!="collector"})')
    assert not others, f"a second writer of traces_service_graph_*: {others}"


# ---------------------------------------------------------------- 6. every dashboard query

def dashboard_queries(tmp_path) -> list[dict]:
    """Every PromQL expression of every provisioned dashboard, Grafana variables filled in
    (scripts/grafana/check_dashboards.py does the substitution for promtool too)."""
    out = tmp_path / "queries.json"
    subprocess.run([sys.executable, str(ROOT / "scripts/grafana/check_dashboards.py"),
                    "--promtool", "never", "--quiet", "--emit-queries", str(out)],
                   check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def needs(query: dict, tempo: bool) -> str | None:
    """Why a dashboard query cannot return series in this run, or None."""
    if "k6_" in query["expr"]:
        return "needs k6"  # k6 is AGPL: CI drives load with crates/load instead
    if not tempo and ('source="tempo"' in query["expr"] or "traces_spanmetrics" in query["expr"]):
        return "needs Tempo's metrics generator"
    if not COMPOSE and "traces_service_graph" in query["expr"]:
        return "needs the collector's service_graph connector"
    return None


def test_every_dashboard_query_returns_series(store, run, tmp_path):
    queries = dashboard_queries(tmp_path)
    assert len(queries) > 50, f"only {len(queries)} queries found"
    empty, not_executed = [], Counter()
    for q in queries:
        if reason := needs(q, store.tempo):
            print(f"not executed: {reason}: {q['dashboard']} / {q['panel']}")
            not_executed[reason] += 1
            continue
        # Over the scenario's time range, as Grafana would draw it (stat panels show the
        # last point of the same evaluation).
        if not prom_query_range(q["expr"], run["start"], time.time()):
            empty.append(q)
    # A counter first incremented late in the run (the third party's retries, at its end) may
    # have had one push when its rate is asked for: the empty ones get two more pushes.
    deadline = time.monotonic() + 2 * OTLP_METRIC_INTERVAL_S + 5
    while empty and time.monotonic() < deadline:
        time.sleep(5)
        empty = [q for q in empty if not prom_query_range(q["expr"], run["start"], time.time())]
    empty = [f'{q["dashboard"]} / {q["panel"]}: {q["expr"]}' for q in empty]
    executed = len(queries) - sum(not_executed.values())
    print(f"\n{len(queries)} dashboard queries: {executed - len(empty)} with series, "
          f"{len(empty)} empty, not executed: {dict(not_executed)}")
    assert not empty, "queries without series:\n  " + "\n  ".join(empty)


# ---------------------------------------------------------------- 7. nothing lost, sampling works

def test_collector_refused_and_dropped_nothing_under_smoke_and_load(run):
    before, after = run["counters_before"], run["after_load"]
    delta = {name: after[name] - before.get(name, 0) for name in after}
    accepted = {n: v for n, v in delta.items() if n.startswith("otelcol_receiver_accepted_")}
    lost = {n: v for n, v in delta.items()
            if any(w in n for w in ("_refused_", "_failed_", "dropped")) and not n.endswith("_bucket")}
    print(f"\naccepted during smoke + load: {accepted}")
    for signal in ("spans", "metric_points", "log_records"):
        assert accepted.get(f"otelcol_receiver_accepted_{signal}_total", 0) > 0, accepted
    assert lost and not any(lost.values()), f"lost telemetry during smoke + load: {lost}"


def test_tail_sampling_keeps_errors_and_drops_part_of_the_rest(store, run):
    spans = eventually(f"error trace {run['error_trace']} in {store.kind}",
                       lambda: store.trace(run["error_trace"]), 30)
    assert any(s.status_code == 2 for s in spans), "the kept error trace has no ERROR span"
    # Per-trace decisions, from Prometheus (the collector dashboard's source).
    decisions = prom_query("sum by (sampled) "
                           "(otelcol_processor_tail_sampling_global_count_traces_sampled_total)")
    by = {r["metric"].get("sampled"): float(r["value"][1]) for r in decisions}
    print(f"\ntail sampling decisions: {by}")
    assert by.get("true", 0) > 0 and by.get("false", 0) > 0, f"want kept and dropped traces: {by}"


def test_the_poison_message_fires_messages_dead_lettered(run):
    """Reliability scenario 6's alert, live: the run's poison message is dead-lettered, and
    MessagesDeadLettered reaches Alertmanager's receiver (the demo's webhook)."""
    if COMPOSE:
        pytest.skip("natively only: compose publishes no webhook of its own")
    started = run["start"] + 60  # the fixture's start has a minute of slack for range queries

    def fired():
        return any(name == "MessagesDeadLettered" and state == "firing" and at >= started
                   for at, name, state in alert_events())

    eventually("MessagesDeadLettered at the webhook", fired, 90, 2)


# ---------------------------------------------------------------- 8. memory, measured

# What else ran besides the load tool (the `run` fixture), for the memory report's reader.
ALSO_RAN = ("before the load tool, test_alerts.py's steady traffic (about 10 requests/s for 3 "
            "minutes, service-b failing and service-d 800 ms slow for half a minute of it); "
            "after it, an order with the third party failing (503), a poison Kafka message, one "
            "injected 503 of service-d, one order followed to fulfilment, then this file's checks "
            "(Prometheus queries, every dashboard query over the run)")


def test_memory_peaks_of_every_native_component(run, memory):
    """The peak resident memory of each process of the native stack over the whole test, with
    the load it ran under, in $OTEL_DEMO_STATE/stack-test-memory.json: measured figures for
    a memory budget. Last in the file, so the peaks cover every check above."""
    if memory is None:
        pytest.skip("natively only: the pids come from scripts/dev-stack.sh and scripts/infra.sh "
                    "(compose: docker stats)")
    report = memory.report(LOAD_RUNS, ALSO_RAN)
    path = mem.write(report)
    print(f"\npeak resident memory (MiB), written to {path}:\n{mem.table(report)}")
    unmeasured = {name: e.get("problem", "no figure") for name, e in report["components"].items()
                  if not e["peak_mib"]}
    assert not unmeasured, f"components not measured: {unmeasured}"
    assert [r["scenario"] for r in report["load"]] == ["smoke", "load", "chaos"], report["load"]
