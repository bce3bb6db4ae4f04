"""Clients for a running stack: Prometheus, the collector's own metrics, the services, the
load tool, and where traces and logs end up.

Two targets, chosen by STACK_TARGET:
  native   `scripts/dev-stack.sh up --observability` (the default): traces and logs are read
           from the otlp-sink files that stand where the collector exports to Tempo and Loki
           (both AGPL, never built here), exactly as the collector sent them;
  compose  `docker compose up` with tests/stack/compose.override.yml: the same assertions
           through Tempo's and Loki's real APIs (TraceQL, LogQL, Tempo's metrics generator).
Addresses come from STACK_* variables; the defaults are the ports both targets publish on
127.0.0.1. Standard library only, so the stack test needs nothing but pytest."""

from __future__ import annotations

import base64
import json
import os
import itertools
import subprocess
import threading
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("STACK_TARGET", "native")
if TARGET not in ("native", "compose"):
    raise SystemExit(f"STACK_TARGET must be native or compose, not {TARGET!r}")
COMPOSE = TARGET == "compose"
STATE = Path(os.environ.get("OTEL_DEMO_STATE", "/tmp/otel-rust-demo-stack"))
CACHE = Path(os.environ.get("OTEL_DEMO_CACHE",
                            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "otel-rust-demo"))
PROMETHEUS = os.environ.get("STACK_PROMETHEUS_URL", "http://127.0.0.1:9090")
LOKI = os.environ.get("STACK_LOKI_URL", "http://127.0.0.1:3100")
TEMPO = os.environ.get("STACK_TEMPO_URL", "http://127.0.0.1:3200")
GATEWAY = os.environ.get("STACK_GATEWAY_URL", "http://127.0.0.1:8080")
COLLECTOR_METRICS = os.environ.get("STACK_COLLECTOR_METRICS_URL", "http://127.0.0.1:8888/metrics")
ALERTMANAGER = os.environ.get("STACK_ALERTMANAGER_URL", "http://127.0.0.1:9093")
ALERT_WEBHOOK = os.environ.get("STACK_ALERT_WEBHOOK_URL", "http://127.0.0.1:9097")
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "dev-admin-token")
ADMIN = {"service-b": os.environ.get("STACK_SERVICE_B_URL", "http://127.0.0.1:8082"),
         "service-d": os.environ.get("STACK_SERVICE_D_URL", "http://127.0.0.1:8084"),
         "third-party-stub": os.environ.get("STACK_THIRD_PARTY_URL", "http://127.0.0.1:8090")}
TEMPO_SINK = STATE / "observability" / "tempo-sink"
LOKI_SINK = STATE / "observability" / "loki-sink"

SERVICES = ["api-gateway", "service-a", "service-b", "service-c", "service-d"]

# OTLP enums, as numbers (the otlp-sink) or names (Tempo's JSON).
KINDS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
         "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
STATUS = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def http(method: str, url: str, body=None, headers=None, timeout=10.0):
    """Returns (status, headers, parsed JSON body or text); never raises on HTTP errors."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, rh, raw = err.code, err.headers, err.read()
    text = raw.decode(errors="replace")
    try:
        return status, rh, json.loads(text)
    except ValueError:
        return status, rh, text


def get_json(url: str, params: dict | None = None, timeout=10.0):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    status, _, body = http("GET", url, timeout=timeout)
    if status != 200:
        raise AssertionError(f"GET {url}: HTTP {status}: {str(body)[:500]}")
    return body


def eventually(what: str, check, timeout: float, interval: float = 1.0):
    """Polls `check` until it returns a truthy value; fails naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
        except AssertionError as err:  # a backend still warming up answers with an error
            last = err
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f}s (last: {str(last)[:800]})")
        time.sleep(interval)


def trace_id_of(headers) -> str:
    """Trace id from the `traceresponse` header (00-<trace>-<span>-<flags>)."""
    value = headers.get("traceresponse") or ""
    parts = value.split("-")
    assert len(parts) == 4 and len(parts[1]) == 32, f"no traceresponse header: {dict(headers)}"
    return parts[1]


# ------------------------------------------------------------------ Prometheus

def prom_query(expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    body = get_json(f"{PROMETHEUS}/api/v1/query", params)
    assert body.get("status") == "success", body
    return body["data"]["result"]


def prom_query_range(expr: str, start: float, end: float, step: str = "15s") -> list[dict]:
    """A range query, as Grafana runs a time-series panel over the dashboard's time range."""
    body = get_json(f"{PROMETHEUS}/api/v1/query_range",
                    {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})
    assert body.get("status") == "success", body
    return body["data"]["result"]


def prom_value(expr: str) -> float | None:
    """The single value of an instant vector or scalar query; None when there is no series."""
    result = prom_query(expr)
    if not result:
        return None
    if isinstance(result, dict) or (result and "value" not in result[0]):
        return float(result[1])
    assert len(result) == 1, f"{expr}: {len(result)} series"
    return float(result[0]["value"][1])


def prom_exemplars(expr: str, start: float, end: float) -> list[dict]:
    body = get_json(f"{PROMETHEUS}/api/v1/query_exemplars",
                    {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    assert body.get("status") == "success", body
    return body["data"]


# ------------------------------------------------------------------ logs (Loki or its sink)

def loki_lines(query: str, start: float, end: float, limit: int = 1000) -> list[dict]:
    """Log lines from Loki as {labels, metadata, line}; structured metadata comes with
    categorize-labels."""
    url = f"{LOKI}/loki/api/v1/query_range?" + urllib.parse.urlencode({
        "query": query, "start": str(int(start * 1e9)), "end": str(int(end * 1e9)),
        "limit": str(limit), "direction": "backward"})
    req = urllib.request.Request(url, headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        body = json.loads(resp.read())
    assert body.get("status") == "success", body
    out = []
    for stream in body["data"]["result"]:
        for entry in stream["values"]:
            meta = entry[2] if len(entry) > 2 else {}
            out.append({"labels": stream["stream"], "line": entry[1],
                        "metadata": meta.get("structuredMetadata", {}) if isinstance(meta, dict) else {}})
    return out


def jsonl(path: Path) -> list[dict]:
    """The JSON lines an otlp-sink wrote; [] before the first one arrived."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def sink_log_records() -> list[dict]:
    """Every log record the collector exported to Loki's address (native target)."""
    return jsonl(LOKI_SINK / "logs.jsonl")


def sink_requests(sink: Path) -> list[dict]:
    """Every export call a sink received: signal, path, encoding, transport."""
    return jsonl(sink / "requests.jsonl")


# ------------------------------------------------------------------ traces

@dataclass
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    status_code: int
    attributes: dict = field(default_factory=dict)


def _hex_id(value: str, size: int) -> str:
    """Tempo's OTLP JSON may carry ids as base64 (protobuf JSON) or hex."""
    if not value:
        return ""
    if len(value) == size * 2 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return base64.b64decode(value).hex()


def _any_value(v: dict):
    for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if key in v:
            return str(v[key]).lower() if key == "boolValue" else str(v[key])
    return json.dumps(v)


def spans_from_otlp_json(trace: dict) -> list[Span]:
    spans = []
    for rs in trace.get("resourceSpans") or trace.get("batches") or []:
        res = {a["key"]: _any_value(a["value"]) for a in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for s in ss.get("spans", []):
                kind = s.get("kind", 0)
                status = s.get("status", {}).get("code", 0)
                spans.append(Span(
                    service=res.get("service.name", ""),
                    trace_id=_hex_id(s.get("traceId", ""), 16),
                    span_id=_hex_id(s.get("spanId", ""), 8),
                    parent_span_id=_hex_id(s.get("parentSpanId", ""), 8),
                    name=s.get("name", ""),
                    kind=KINDS.get(kind, kind) if isinstance(kind, str) else int(kind),
                    status_code=STATUS.get(status, status) if isinstance(status, str) else int(status),
                    attributes={a["key"]: _any_value(a["value"]) for a in s.get("attributes", [])},
                ))
    return spans


class TraceStore:
    """Where the collector's sampled traces end up: Tempo (compose: API, TraceQL) or the
    otlp-sink in Tempo's place (native)."""

    def __init__(self):
        self.tempo = COMPOSE
        if not self.tempo and not TEMPO_SINK.exists():
            raise AssertionError(f"no otlp-sink output in {TEMPO_SINK}: is the native stack up "
                                 "(scripts/dev-stack.sh up --observability)?")

    @property
    def kind(self) -> str:
        return "Tempo" if self.tempo else "the otlp-sink in Tempo's place"

    def sink_spans(self) -> list[Span]:
        return [Span(d["service"], d["trace_id"], d["span_id"], d["parent_span_id"], d["name"],
                     d["kind"], d["status_code"], d["attributes"])
                for d in jsonl(TEMPO_SINK / "spans.jsonl")]

    def trace(self, trace_id: str) -> list[Span]:
        """Every span of the trace; [] when the store does not have it."""
        if not self.tempo:
            return [s for s in self.sink_spans() if s.trace_id == trace_id]
        status, _, body = http("GET", f"{TEMPO}/api/v2/traces/{trace_id}", timeout=15)
        if status == 404:
            return []
        assert status == 200, f"Tempo trace {trace_id}: HTTP {status}: {str(body)[:300]}"
        return spans_from_otlp_json(body.get("trace", body))

    def has(self, trace_id: str) -> bool:
        return bool(self.trace(trace_id))

    def missing(self, trace_ids) -> list[str]:
        """The ids among `trace_ids` the store does not hold, sorted (`has` for each; the sink
        file is read once, not once per id)."""
        if self.tempo:
            return sorted(t for t in set(trace_ids) if not self.has(t))
        held = {s.trace_id for s in self.sink_spans()}
        return sorted(set(trace_ids) - held)

    def search(self, traceql: str, start: float, end: float, limit: int = 50) -> list[str]:
        """Trace ids matching a TraceQL query (Tempo only)."""
        body = get_json(f"{TEMPO}/api/search", {"q": traceql, "start": int(start), "end": int(end),
                                                 "limit": limit, "spss": 100})
        return [_hex_id(t["traceID"].rjust(32, "0"), 16) for t in body.get("traces", [])]

    def traces_through(self, services: list[str]) -> list[str]:
        """Sink only: trace ids holding spans of every service in `services`."""
        by_trace: dict[str, set[str]] = {}
        for s in self.sink_spans():
            by_trace.setdefault(s.trace_id, set()).add(s.service)
        return [t for t, svc in by_trace.items() if set(services) <= svc]


# ------------------------------------------------------------------ services and load

def set_fault(service: str, fault: dict) -> None:
    status, _, body = http("PUT", f"{ADMIN[service]}/admin/faults", fault,
                           {"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, f"PUT {service} /admin/faults: {status} {body}"


def clear_faults(service: str) -> None:
    status, _, body = http("DELETE", f"{ADMIN[service]}/admin/faults",
                           headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status in (200, 204), f"DELETE {service} /admin/faults: {status} {body}"


def load_bin() -> Path:
    """The load tool (crates/load): LOAD_BIN, or the debug build scripts/test.sh made."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    path = Path(os.environ.get("LOAD_BIN", target / "debug" / "load"))
    assert path.exists(), f"{path} is missing: cargo build -p load (or set LOAD_BIN)"
    return path


# Every load tool run of this session, in order: what the memory peaks were measured under.
LOAD_RUNS: list[dict] = []


def load(scenario: str, extra_env: dict | None = None, timeout: float = 400) -> dict:
    """Runs one scenario of the load tool against the gateway; fails with the tail of its
    output when a threshold fails. Returns its summary (the --summary-json document) and
    records the run in LOAD_RUNS."""
    env = dict(os.environ)
    env.update({"BASE_URL": GATEWAY, "SERVICE_B_ADMIN_URL": ADMIN["service-b"],
                "SERVICE_D_ADMIN_URL": ADMIN["service-d"], "ADMIN_TOKEN": ADMIN_TOKEN})
    env.update(extra_env or {})
    out_dir = STATE / "load"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary, log = out_dir / f"{scenario}.json", out_dir / f"{scenario}.log"
    with open(log, "w") as output:
        code = subprocess.run([str(load_bin()), scenario, "--summary-json", str(summary)],
                              env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                              timeout=timeout).returncode
    assert code == 0, f"load {scenario} exited {code} (a threshold failed):\n" + \
        "\n".join(log.read_text().splitlines()[-40:])
    result = json.loads(summary.read_text())
    requests = sum(r["count"] for r in result["requests"].values())
    duration = result["duration_s"]
    LOAD_RUNS.append({"scenario": scenario, "settings": dict(extra_env or {}),
                      "duration_s": round(duration, 1), "requests": requests,
                      "requests_per_s": round(requests / duration, 1) if duration else None,
                      "iterations": result["iterations"]})
    return result


def produce_poison(key: str, value: str) -> None:
    """One record that is not an order event, straight onto the topic service-c reads."""
    if COMPOSE:
        cmd = ["docker", "compose", "exec", "-T", "kafka", "/opt/kafka/bin/kafka-console-producer.sh",
               "--bootstrap-server", "kafka:9092", "--topic", "order-events",
               "--reader-property", "parse.key=true"]
        subprocess.run(cmd, input=f"{key}\t{value}\n", text=True, check=True, capture_output=True,
                       cwd=ROOT)
    else:
        subprocess.run([str(ROOT / "scripts/infra.sh"), "produce", key, value],
                       check=True, capture_output=True)


def collector_counters(prefix: str) -> dict[str, float]:
    """The collector's own counters (its :8888 endpoint), summed by metric name."""
    with urllib.request.urlopen(COLLECTOR_METRICS, timeout=5) as resp:
        text = resp.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(prefix):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


class Traffic:
    """Steady traffic through the gateway from two threads, about 10 requests/s: the product
    list and new orders. Records every answer: (started at, kind, status, seconds), with
    status 0 for a request that got no answer within its 10 s."""

    def __init__(self, prefix: str = "traffic") -> None:
        self.prefix = prefix
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[float, str, int, float]] = []
        self.order_ids: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True)
                        for kind in ("products", "orders")]

    @property
    def statuses(self) -> Counter:
        with self.lock:
            return Counter(status for _, _, status, _ in self.answers)

    def _loop(self, kind: str) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            started, clock = time.time(), time.monotonic()
            try:
                if kind == "products":
                    status, _, body = http("GET", f"{GATEWAY}/api/products", timeout=10)
                else:
                    status, _, body = http("POST", f"{GATEWAY}/api/orders", {
                        "customer_id": f"{self.prefix}-{uuid.uuid4().hex[:8]}",
                        "items": [{"sku": "sku-espresso", "quantity": 1 + n % 3}]}, timeout=10)
            except OSError:  # refused, reset or timed out: no answer
                status, body = 0, None
            with self.lock:
                self.answers.append((started, kind, status, time.monotonic() - clock))
                if kind == "orders" and status == 201 and isinstance(body, dict) and "id" in body:
                    self.order_ids.append(str(body["id"]))
            time.sleep(0.2)

    def __enter__(self) -> "Traffic":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


# ------------------------------------------------------------------ alerts

def notifications() -> list[dict]:
    """Every notification the demo's webhook (crates/alert-webhook) received."""
    return get_json(f"{ALERT_WEBHOOK}/alerts")


def alert_events() -> list[tuple[float, str, str]]:
    """(received at, alert name, firing|resolved) of every alert in every notification."""
    out = []
    for n in notifications():
        received = datetime.fromisoformat(n["received_at"].replace("Z", "+00:00")).timestamp()
        for a in n.get("alerts", []):
            out.append((received, a["labels"]["alertname"], a["status"]))
    return out


def firing_in_prometheus() -> set[str]:
    alerts = get_json(f"{PROMETHEUS}/api/v1/alerts")["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
