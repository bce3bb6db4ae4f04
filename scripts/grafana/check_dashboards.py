#!/usr/bin/env python3
"""Static checks for the Grafana provisioning and dashboards of the demo.

No Grafana can run here, so this checks what Grafana would trip over or silently get wrong:

* datasources.yaml: fixed uids, every literal `$` written `$$` (Grafana expands $VAR/${VAR}
  from the environment), exemplar links for both `trace_id` and `traceID`, traces-to-logs
  with a custom query on the `trace_id` structured metadata, Loki derived field on the
  `trace_id` label, every cross-link pointing at a provisioned uid;
* dashboards.yaml: a file provider with a path and a folder;
* every dashboard JSON: parses, has a uid (<= 40 chars) and title, unique across files; every
  panel, rows' nested panels included, has at least one target with a non-empty query; every
  datasource uid (panels, targets, variables, annotations) is provisioned and of the right
  type; panel ids and refIds are unique; grid positions fit and do not overlap; every
  variable used in a query is defined; a multi-value variable is never used with `=`/`!=`;
  latency time series over exemplar-carrying histograms have exemplars on.

It also writes every PromQL expression, with Grafana variables replaced by plausible values,
as a Prometheus rules file (--emit-rules; one recording rule per expression, named
dashboard:<uid>:<panel id>:<refId>) for `promtool check rules`, and as JSON (--emit-queries)
for a job that runs each query against a live Prometheus. LogQL/TraceQL go to
--emit-other-queries. If a promtool binary is found (the demo's tool cache, then PATH), the
emitted rules are checked with it (--promtool never to skip).

    python3 scripts/grafana/check_dashboards.py [--emit-rules F] [--emit-queries F]
    python3 scripts/grafana/check_dashboards.py --self-test   # proves each check can fail

Exit status: 0 clean, 1 problems found, 2 bad usage. Python 3.11 with PyYAML (scripts/test.sh
runs it with the venv it creates).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DASHBOARDS = ROOT / "grafana" / "dashboards"
DEFAULT_DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
DEFAULT_PROVIDERS = ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"

# Data sources that exist in every Grafana without provisioning.
BUILTIN_DATASOURCE_UIDS = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"}

# Grafana's global variables and the values used for them when emitting queries.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "__auto": "1m",
    "__from": "1700000000000",
    "__to": "1700000300000",
}

# Plausible values for query variables (their real values only exist at runtime).
SAMPLE_VALUES = {
    "service": ["api-gateway", "service-a"],
    "log_service": ["service-a", "service-c"],
    "job": ["api-gateway"],
    "breaker": ["service-b"],
}

# Histograms whose exemplars always resolve to a stored trace: the services' /metrics
# (trace_id; the collector keeps every trace marked demo.exemplar=true) and Tempo's
# generator (traceID; built from stored traces). Latency time series over them must show
# exemplars.
EXEMPLAR_HISTOGRAMS = (
    "http_server_request_duration_seconds_bucket",
    "http_client_request_duration_seconds_bucket",
    "traces_spanmetrics_latency_bucket",
)
# Exemplars picked before tail sampling (collector span_metrics connector): many point at
# traces that were never stored, so panels over them must not show exemplar dots.
UNRESOLVABLE_EXEMPLAR_HISTOGRAMS = (
    "traces_span_metrics_duration_seconds_bucket",
    "traces_span_metrics_duration_milliseconds_bucket",
)

# Where each data source type keeps a target's query text.
QUERY_FIELD = {"prometheus": "expr", "loki": "expr", "tempo": "query"}

# Metrics Grafana's Tempo service map reads from Prometheus, its serviceMapQuery's matchers
# inserted into each: the graph (traces_service_graph_*, written by the collector) and the RED
# table beside it (traces_spanmetrics_*, written by Tempo's generator).
SERVICE_MAP_METRICS = (
    ("sum by (client, server) (rate(traces_service_graph_request_total{sel}[5m]))"),
    ("sum by (client, server) (rate(traces_service_graph_request_failed_total{sel}[5m]))"),
    ("sum by (client, server, le) "
     "(rate(traces_service_graph_request_server_seconds_bucket{sel}[5m]))"),
    ("sum by (service, span_name) (rate(traces_spanmetrics_calls_total{sel}[5m]))"),
    ("sum by (service, span_name, le) (rate(traces_spanmetrics_latency_bucket{sel}[5m]))"),
)
# The graph's and the table's series come from different writers (see above), so a matcher on
# `source` empties one of the two.
SERVICE_MAP_SPLIT_LABELS = ("source",)

# Series that name every service emitting spans (service-c serves no business HTTP route, so
# HTTP server metrics miss it). A variable that filters traces by service must come from one.
SPAN_DERIVED_METRICS = ("traces_span_metrics_", "traces_spanmetrics_")

# Each dashboard says, in a text panel, when its data shows up after traffic starts (the most
# common "No data" report on demo stacks is the first minute).
DATA_DELAY_PANEL = "When data shows"

DURATION = re.compile(r"(?P<sign>-?)(?P<n>\d+)(?P<unit>ms|s|m|h|d)")

KNOWN_PANEL_TYPES = {
    "row", "timeseries", "stat", "state-timeline", "status-history", "logs", "table",
    "nodeGraph", "barchart", "bargauge", "gauge", "heatmap", "histogram", "piechart",
    "traces", "text",
}

VAR_REF = re.compile(
    r"\$\{(?P<braced>\w+)(?P<fmt>[.:][^}]*)?\}"  # ${name} ${name:regex} ${name.field}
    r"|\[\[(?P<old>\w+)(?::\w+)?\]\]"  # [[name]] (deprecated)
    r"|\$(?P<plain>\w+)"  # $name
)
MATCHER = re.compile(r'(?P<label>[\w.:]+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------- problems


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bad(self, where: str, msg: str) -> None:
        self.problems.append(f"{where}: {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; Grafana's YAML parser (Go yaml.v3) refuses
    the file, so a duplicate key is a problem here too."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, report: Report):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as e:
        report.bad(str(path), f"cannot read: {e}")
    except yaml.YAMLError as e:
        report.bad(str(path), f"YAML: {e}")
    return None


# --------------------------------------------------------------------------- provisioning


def grafana_env_expand(value, where: str, report: Report):
    """Applies Grafana's provisioning env expansion: `$$` -> `$`; `$X`/`${X}` is a problem."""
    if isinstance(value, dict):
        return {k: grafana_env_expand(v, f"{where}.{k}", report) for k, v in value.items()}
    if isinstance(value, list):
        return [grafana_env_expand(v, f"{where}[{i}]", report) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    out, i = "", 0
    while i < len(value):
        if value.startswith("$$", i):
            out += "$"
            i += 2
        elif value[i] == "$":
            m = re.match(r"\$(\{[^}]*\}|\w+)", value[i:])
            ref = m.group(0) if m else "$"
            report.bad(where, f"unescaped {ref!r}: Grafana would replace it with an "
                              f"environment variable; write $$ for a literal $")
            out += ref
            i += len(ref)
        else:
            out += value[i]
            i += 1
    return out


# Values for the variables Grafana fills in when following a trace link.
LINK_VARIABLES = {
    "__tags": 'service_name="service-a"',
    "__span.name": "POST /orders",
    '__span.tags["service.name"]': "service-a",
    "__trace.traceId": "0af7651916cd43dd8448eb211c80319c",
    "__span.spanId": "b7ad6b7169203331",
    "__rate_interval": "1m",
    "__interval": "30s",
}


def substitute_link(text: str, where: str, report: Report) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in LINK_VARIABLES:
            report.bad(where, f"unknown link variable {m.group(0)!r}")
            return "undefined"
        return LINK_VARIABLES[name]

    return re.sub(r"\$\{([^}]+)\}|\$(__\w+)", repl, text)


def check_datasources(path: Path, report: Report, links: list | None = None) -> dict[str, str]:
    """Returns {uid: type} of the provisioned data sources; appends link queries to `links`."""
    links = links if links is not None else []
    where = path.name
    raw = load_yaml(path, report)
    if raw is None:
        return {}
    data = grafana_env_expand(raw, where, report)
    if not isinstance(data, dict) or not isinstance(data.get("datasources"), list):
        report.bad(where, "expected a top-level `datasources:` list")
        return {}
    if data.get("apiVersion") != 1:
        report.bad(where, "apiVersion must be 1")
    by_uid: dict[str, dict] = {}
    for i, ds in enumerate(data["datasources"]):
        w = f"{where}: datasources[{i}]"
        if not isinstance(ds, dict):
            report.bad(w, "not a mapping")
            continue
        for key in ("name", "type", "uid", "url"):
            if not ds.get(key):
                report.bad(w, f"missing {key}")
        uid = ds.get("uid")
        if uid in by_uid:
            report.bad(w, f"duplicate uid {uid!r}")
        if uid:
            by_uid[uid] = ds
    uids = {uid: ds.get("type", "") for uid, ds in by_uid.items()}

    expected = {"prometheus": ("prometheus", "http://prometheus:9090"),
                "tempo": ("tempo", "http://tempo:3200"),
                "loki": ("loki", "http://loki:3100"),
                "alertmanager": ("alertmanager", "http://alertmanager:9093")}
    for uid, (typ, url) in expected.items():
        ds = by_uid.get(uid)
        if ds is None:
            report.bad(where, f"no data source with uid {uid!r}")
            continue
        if ds.get("type") != typ:
            report.bad(where, f"uid {uid!r} has type {ds.get('type')!r}, expected {typ!r}")
        if ds.get("url") != url:
            report.bad(where, f"uid {uid!r} has url {ds.get('url')!r}, expected {url!r}")

    def js(uid: str) -> dict:
        return (by_uid.get(uid) or {}).get("jsonData") or {}

    def link(w: str, target_uid, want_type: str) -> None:
        if target_uid not in uids:
            report.bad(w, f"datasourceUid {target_uid!r} is not provisioned")
        elif uids[target_uid] != want_type:
            report.bad(w, f"datasourceUid {target_uid!r} is a {uids[target_uid]}, "
                          f"expected {want_type}")

    if "prometheus" in by_uid:
        dests = js("prometheus").get("exemplarTraceIdDestinations") or []
        names = {d.get("name") for d in dests if isinstance(d, dict)}
        for name in ("trace_id", "traceID"):
            if name not in names:
                report.bad(where, f"prometheus: no exemplarTraceIdDestinations entry for "
                                  f"label {name!r}")
        for d in dests:
            if isinstance(d, dict):
                link(f"{where}: prometheus exemplar {d.get('name')!r}", d.get("datasourceUid"),
                     "tempo")
    if "tempo" in by_uid:
        t = js("tempo")
        logs = t.get("tracesToLogsV2") or {}
        if not logs:
            report.bad(where, "tempo: no tracesToLogsV2")
        else:
            link(f"{where}: tempo tracesToLogsV2", logs.get("datasourceUid"), "loki")
            q = logs.get("query") or ""
            if q:
                links.append(("loki", "tempo tracesToLogsV2", q))
            if logs.get("customQuery") is not True or "trace_id" not in q \
                    or "${__trace.traceId}" not in q:
                report.bad(where, "tempo: tracesToLogsV2 needs customQuery: true and a query "
                                  "filtering the trace_id structured metadata on "
                                  "${__trace.traceId} (the built-in filter is a line filter)")
        metrics = t.get("tracesToMetrics") or {}
        if not metrics:
            report.bad(where, "tempo: no tracesToMetrics")
        else:
            link(f"{where}: tempo tracesToMetrics", metrics.get("datasourceUid"), "prometheus")
            for q in metrics.get("queries") or []:
                if not (isinstance(q, dict) and q.get("query")):
                    report.bad(where, "tempo: tracesToMetrics query without `query`")
                else:
                    links.append(("prometheus", f"tempo tracesToMetrics {q.get('name')!r}",
                                  q["query"]))
        check_time_shifts(t, where, report)
        link(f"{where}: tempo serviceMap", (t.get("serviceMap") or {}).get("datasourceUid"),
             "prometheus")
        if (t.get("nodeGraph") or {}).get("enabled") is not True:
            report.bad(where, "tempo: nodeGraph.enabled must be true")
        if not (t.get("streamingEnabled") or {}).get("search"):
            report.bad(where, "tempo: streamingEnabled.search must be true")
        if (t.get("search") or {}).get("hide"):
            report.bad(where, "tempo: search is hidden")
    if "loki" in by_uid:
        fields = js("loki").get("derivedFields") or []
        ok = [f for f in fields if isinstance(f, dict) and f.get("matcherType") == "label"
              and f.get("matcherRegex") == "trace_id"]
        if not ok:
            report.bad(where, "loki: needs a derived field with matcherType: label and "
                              "matcherRegex: trace_id")
        for f in fields:
            if not isinstance(f, dict):
                continue
            link(f"{where}: loki derived field {f.get('name')!r}", f.get("datasourceUid"),
                 "tempo")
            if f.get("url") != "${__value.raw}":
                report.bad(where, f"loki derived field {f.get('name')!r}: url should be "
                                  "${__value.raw} (written $${__value.raw})")
    return uids


def check_time_shifts(tempo: dict, where: str, report: Report) -> None:
    """Grafana ADDS the span shifts of trace-to-logs/metrics to the span's start and end, but
    SUBTRACTS traceQuery's start shift from the range start: the sign that widens differs."""
    def shift(section: str, key: str):
        value = str((tempo.get(section) or {}).get(key) or "0")
        m = DURATION.fullmatch(value.strip())
        if not m and value.strip() != "0":
            report.bad(where, f"tempo: {section}.{key} {value!r} is not a duration")
            return None
        return -1 if m and m.group("sign") else 1

    for section in ("tracesToLogsV2", "tracesToMetrics"):
        if section in tempo:
            if shift(section, "spanStartTimeShift") == 1 and \
                    str(tempo[section].get("spanStartTimeShift") or "0") not in ("0", "0s"):
                report.bad(where, f"tempo: {section}.spanStartTimeShift must be negative (it is "
                                  "added to the span start; a positive value skips its logs)")
            if shift(section, "spanEndTimeShift") == -1:
                report.bad(where, f"tempo: {section}.spanEndTimeShift must not be negative")
    query = tempo.get("traceQuery") or {}
    if query.get("timeShiftEnabled"):
        for key in ("spanStartTimeShift", "spanEndTimeShift"):
            if shift("traceQuery", key) == -1:
                report.bad(where, f"tempo: traceQuery.{key} must be positive: Grafana subtracts "
                                  "the start shift from the range start, so a negative value "
                                  "narrows the window and trace look-ups miss older traces")


def check_providers(path: Path, report: Report) -> None:
    where = path.name
    data = load_yaml(path, report)
    if data is None:
        return
    data = grafana_env_expand(data, where, report)
    providers = data.get("providers") if isinstance(data, dict) else None
    if data.get("apiVersion") != 1 if isinstance(data, dict) else True:
        report.bad(where, "apiVersion must be 1")
    if not isinstance(providers, list) or not providers:
        report.bad(where, "expected a non-empty `providers:` list")
        return
    for i, p in enumerate(providers):
        w = f"{where}: providers[{i}]"
        if not isinstance(p, dict):
            report.bad(w, "not a mapping")
            continue
        if not p.get("name"):
            report.bad(w, "missing name")
        if p.get("type", "file") != "file":
            report.bad(w, f"type {p.get('type')!r}, expected file")
        opts = p.get("options") or {}
        if not opts.get("path"):
            report.bad(w, "missing options.path")
        if not p.get("folder") and not opts.get("foldersFromFilesStructure"):
            report.bad(w, "set folder (fixed folder) or options.foldersFromFilesStructure")


# --------------------------------------------------------------------------- dashboards


@dataclass
class Query:
    dashboard: str
    dashboard_title: str
    panel: str
    panel_id: object
    ref_id: str
    kind: str  # panel | variable | annotation | servicemap
    ds_type: str
    raw: str
    expr: str = ""
    exemplar: bool = False
    instant: bool = False


def iter_panels(panels, parent=None):
    for p in panels or []:
        if not isinstance(p, dict):
            continue
        yield p, parent
        if p.get("type") == "row":
            yield from iter_panels(p.get("panels"), p)


def ds_uid(ref):
    """uid of a datasource reference (dict form); strings are names, not uids."""
    if isinstance(ref, dict):
        return ref.get("uid")
    return ref


def variable_samples(var: dict) -> list[str]:
    typ = var.get("type")
    name = var.get("name", "")
    cur = var.get("current") or {}
    cur_vals = cur.get("value")
    cur_vals = [cur_vals] if isinstance(cur_vals, str) else list(cur_vals or [])
    cur_vals = [v for v in cur_vals if v and v != "$__all"]
    if typ in ("constant", "textbox"):
        q = var.get("query")
        return [q if isinstance(q, str) and q else (cur_vals[:1] or ["sample"])[0]]
    if typ in ("custom", "interval"):
        opts = [o.strip() for o in str(var.get("query") or "").split(",") if o.strip()]
        opts = [o.split(" : ")[-1] for o in opts]
        return opts[:2] or cur_vals or ["sample"]
    return SAMPLE_VALUES.get(name) or cur_vals or ["sample"]


def substitute(text: str, variables: dict, where: str, report: Report) -> str:
    def repl(m: re.Match) -> str:
        name = m.group("braced") or m.group("old") or m.group("plain")
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        var = variables.get(name)
        if var is None:
            report.bad(where, f"undefined variable ${name} (not in templating, not a Grafana "
                              f"global)")
            return "undefined"
        samples = variable_samples(var)
        multi = var.get("multi") or var.get("includeAll")
        if multi and len(samples) > 1:
            return "(" + "|".join(samples) + ")"
        return samples[0]

    return VAR_REF.sub(repl, text)


def check_multi_equality(raw: str, variables: dict, where: str, report: Report) -> None:
    for m in MATCHER.finditer(raw):
        if m.group("op") not in ("=", "!="):
            continue
        for ref in VAR_REF.finditer(m.group("value")):
            name = ref.group("braced") or ref.group("old") or ref.group("plain")
            var = variables.get(name) or {}
            if var.get("multi") or var.get("includeAll"):
                report.bad(where, f"multi-value variable ${name} used with "
                                  f"{m.group('op')!r} in {m.group(0)!r}: use =~ / !~")


def lexical_check(expr: str, where: str, report: Report) -> None:
    """Balanced brackets and closed strings; no `$` left after substitution."""
    stack, quote, i = [], None, 0
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            if not stack or stack.pop() != pairs[ch]:
                report.bad(where, f"unbalanced {ch!r} at offset {i}: {expr}")
                return
        elif ch == "$":
            report.bad(where, f"`$` left after variable substitution: {expr}")
            return
        i += 1
    if quote:
        report.bad(where, f"unterminated string: {expr}")
    elif stack:
        report.bad(where, f"unclosed {stack[-1]!r}: {expr}")


def variable_promql(query: str) -> str | None:
    """A PromQL equivalent of a Prometheus variable query, or None."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.+),\s*([A-Za-z_]\w*)\s*\)", q, re.S)
    if m:
        return f"group by ({m.group(2)}) ({m.group(1).strip()})"
    m = re.fullmatch(r"query_result\((.+)\)", q, re.S)
    if m:
        return m.group(1).strip()
    return None


def check_dashboard(path: Path, uids: dict[str, str], report: Report, seen: dict,
                    queries: list[Query]) -> None:
    where = path.name
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        report.bad(where, f"not valid JSON: {e}")
        return
    if not isinstance(dash, dict):
        report.bad(where, "top level is not an object")
        return
    if "dashboard" in dash and "panels" not in dash:
        report.bad(where, "looks like an API export wrapper ({dashboard: ...}); provision the "
                          "inner dashboard object")
        return
    uid, title = dash.get("uid"), dash.get("title")
    if not isinstance(uid, str) or not uid:
        report.bad(where, "missing uid (a fixed uid keeps links and bookmarks stable)")
        uid = f"<no uid: {path.stem}>"
    elif len(uid) > 40 or not re.fullmatch(r"[A-Za-z0-9_-]+", uid):
        report.bad(where, f"uid {uid!r}: use at most 40 characters of [A-Za-z0-9_-]")
    if not isinstance(title, str) or not title.strip():
        report.bad(where, "missing title")
        title = ""
    for key, label in ((uid, "uid"), (title, "title")):
        other = seen.setdefault((label, key), where)
        if other != where:
            report.bad(where, f"{label} {key!r} also used by {other}")
    if not isinstance(dash.get("schemaVersion"), int):
        report.bad(where, "missing integer schemaVersion")
    if dash.get("id") not in (None,):
        report.bad(where, "has a numeric id: drop it (Grafana assigns ids; uid identifies)")

    variables: dict[str, dict] = {}
    for i, var in enumerate((dash.get("templating") or {}).get("list") or []):
        w = f"{where}: variable #{i}"
        name = var.get("name") if isinstance(var, dict) else None
        if not name:
            report.bad(w, "variable without name")
            continue
        if name in variables:
            report.bad(w, f"duplicate variable {name!r}")
        variables[name] = var
    for name, var in variables.items():
        w = f"{where}: variable ${name}"
        if var.get("type") != "query":
            continue
        uid_ = ds_uid(var.get("datasource"))
        typ = check_ds_ref(var.get("datasource"), uids, w, report)
        q = var.get("query")
        text = q.get("query") if isinstance(q, dict) else q
        if not isinstance(text, str) or not text.strip():
            report.bad(w, "query variable with an empty query")
            continue
        if typ == "prometheus" and uid_:
            promql = variable_promql(text)
            if promql is not None:
                queries.append(Query(uid, title, f"variable ${name}", None, name, "variable",
                                     typ, promql))

    check_regex_variables(dash, variables, where, report)

    for i, ann in enumerate((dash.get("annotations") or {}).get("list") or []):
        w = f"{where}: annotation #{i} {ann.get('name')!r}"
        if ann.get("builtIn"):
            continue
        typ = check_ds_ref(ann.get("datasource"), uids, w, report)
        expr = ann.get("expr") or (ann.get("target") or {}).get("expr")
        if typ == "prometheus":
            if not expr:
                report.bad(w, "Prometheus annotation without expr")
            else:
                queries.append(Query(uid, title, f"annotation {ann.get('name')}", None, str(i),
                                     "annotation", typ, expr))

    panel_ids: dict = {}
    top_rects, row_rects = [], {}
    for panel, parent in iter_panels(dash.get("panels")):
        ptitle = panel.get("title") or "(untitled)"
        w = f"{where}: panel {panel.get('id')} {ptitle!r}"
        pid = panel.get("id")
        if not isinstance(pid, int):
            report.bad(w, "panel without an integer id")
        elif pid in panel_ids:
            report.bad(w, f"duplicate panel id {pid} (also {panel_ids[pid]!r})")
        else:
            panel_ids[pid] = ptitle
        ptype = panel.get("type")
        if ptype not in KNOWN_PANEL_TYPES:
            report.bad(w, f"unknown panel type {ptype!r}")
        gp = panel.get("gridPos") or {}
        if not all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")):
            report.bad(w, "gridPos needs integer x, y, w, h")
        elif gp["x"] < 0 or gp["w"] < 1 or gp["x"] + gp["w"] > 24 or gp["h"] < 1:
            report.bad(w, f"gridPos {gp} does not fit the 24-column grid")
        else:
            rects = top_rects if parent is None or not parent.get("collapsed") \
                else row_rects.setdefault(id(parent), [])
            rect = (gp["x"], gp["y"], gp["x"] + gp["w"], gp["y"] + gp["h"])
            for other, otitle in rects:
                if rect[0] < other[2] and other[0] < rect[2] and rect[1] < other[3] \
                        and other[1] < rect[3]:
                    report.bad(w, f"overlaps panel {otitle!r}")
            rects.append((rect, ptitle))
        if ptype == "text":
            continue
        if ptype == "row":
            if panel.get("targets"):
                report.bad(w, "row with targets")
            if panel.get("panels") and not panel.get("collapsed"):
                report.bad(w, "expanded row keeps nested panels (they would be hidden); "
                              "only collapsed rows hold panels")
            continue
        check_panel(panel, parent, uid, title, w, uids, variables, report, queries)
    delay = [p for p, _ in iter_panels(dash.get("panels"))
             if p.get("type") == "text" and p.get("title") == DATA_DELAY_PANEL]
    if not delay or not re.search(r"\d+\s*(s|seconds|minutes?)\b",
                                  str((delay[0].get("options") or {}).get("content") or "")):
        report.bad(where, f"no text panel {DATA_DELAY_PANEL!r} saying how many seconds pass "
                          "before data shows (a new user's first minute is \"No data\")")


def check_regex_variables(dash: dict, variables: dict, where: str, report: Report) -> None:
    """"All" on a variable used in a regex matcher expands to (a|b|...), or to "()" when the
    variable has no values yet, which Loki rejects (HTTP 400) and Prometheus matches nothing
    with. A custom allValue that cannot match the empty string always parses."""
    text = json.dumps(dash.get("panels") or [])
    for name, var in variables.items():
        if not var.get("includeAll"):
            continue
        in_regex = any(m.group("op") in ("=~", "!~") and
                       re.search(r"\$\{?" + re.escape(name) + r"\b", m.group("value"))
                       for m in MATCHER.finditer(text.replace('\\"', '"')))
        if not in_regex:
            continue
        all_value = var.get("allValue")
        if not all_value:
            report.bad(f"{where}: variable ${name}", "used in a regex matcher with \"All\" "
                       "but no allValue: with no values All becomes \"()\" and Loki answers "
                       "HTTP 400; set allValue to \".+\"")
        elif re.fullmatch(all_value, ""):
            report.bad(f"{where}: variable ${name}", f"allValue {all_value!r} matches the "
                       "empty string; Loki refuses a selector of such matchers")


def check_trace_service_filter(query: str, variables: dict, where: str,
                               report: Report) -> None:
    """A trace search filtered by a service variable shows only the services the variable
    knows: it must come from span-derived series, which name every service that emits spans."""
    for m in re.finditer(r"resource\.service\.name\s*=~?\s*\"\$\{?(\w+)", query):
        var = variables.get(m.group(1)) or {}
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if var.get("type") == "query" and not any(s in str(q) for s in SPAN_DERIVED_METRICS):
            report.bad(where, f"trace search filters services by ${m.group(1)}, whose values "
                              f"come from {q!r}: services without those series (service-c "
                              "has no HTTP routes) never show; draw it from span metrics")


def check_ds_ref(ref, uids: dict[str, str], where: str, report: Report) -> str | None:
    """Checks a datasource reference; returns its provisioned type."""
    if ref is None:
        report.bad(where, "no datasource (would use the default data source implicitly)")
        return None
    if isinstance(ref, str):
        report.bad(where, f"datasource given by name {ref!r}: use {{type, uid}}")
        return None
    uid = ref.get("uid") if isinstance(ref, dict) else None
    if not uid:
        report.bad(where, f"datasource reference without uid: {ref!r}")
        return None
    if uid in BUILTIN_DATASOURCE_UIDS:
        return "grafana"
    if uid.startswith("${") or uid.startswith("$"):
        report.bad(where, f"datasource uid {uid!r} is a variable; pin the provisioned uid")
        return None
    if uid not in uids:
        report.bad(where, f"unknown datasource uid {uid!r} (provisioned: "
                          f"{', '.join(sorted(uids)) or 'none'})")
        return None
    if ref.get("type") and ref["type"] != uids[uid]:
        report.bad(where, f"datasource uid {uid!r} is a {uids[uid]}, reference says "
                          f"{ref['type']!r}")
    return uids[uid]


def check_panel(panel, parent, uid, title, where, uids, variables, report, queries) -> None:
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        report.bad(where, "has no targets")
        return
    panel_ds = panel.get("datasource")
    mixed = ds_uid(panel_ds) == "-- Mixed --"
    if panel_ds is not None and not mixed:
        check_ds_ref(panel_ds, uids, f"{where} (panel datasource)", report)
    ref_ids, non_empty, problems_before = set(), 0, len(report.problems)
    for j, t in enumerate(targets):
        ref = t.get("refId") if isinstance(t, dict) else None
        tw = f"{where} target {ref or j}"
        if not isinstance(t, dict):
            report.bad(tw, "target is not an object")
            continue
        if not ref:
            report.bad(tw, "target without refId")
        elif ref in ref_ids:
            report.bad(tw, f"duplicate refId {ref!r}")
        ref_ids.add(ref)
        ds = t.get("datasource", None if mixed else panel_ds)
        if ds is None and mixed:
            report.bad(tw, "target of a mixed panel without its own datasource")
            continue
        typ = check_ds_ref(ds, uids, tw, report)
        if typ is None:
            continue
        if typ == "tempo" and t.get("queryType") == "serviceMap":
            text = t.get("serviceMapQuery")
            text = " ".join(text) if isinstance(text, list) else text
        elif typ in QUERY_FIELD:
            text = t.get(QUERY_FIELD[typ])
        else:
            report.bad(tw, f"no query checks for datasource type {typ!r}")
            continue
        if t.get("queryType") == "serviceMap":
            text = text or ""  # no filter: the whole graph
            for m in MATCHER.finditer(text):
                if m.group("label") in SERVICE_MAP_SPLIT_LABELS:
                    report.bad(tw, f"serviceMapQuery matches {m.group(0)!r}: the graph "
                                   "(traces_service_graph_*, the collector) and its table "
                                   "(traces_spanmetrics_*, Tempo) have different writers, so "
                                   "this filter empties one of them")
        elif not isinstance(text, str) or not text.strip():
            report.bad(tw, f"empty {QUERY_FIELD.get(typ, 'query')}")
            continue
        if typ == "tempo":
            check_trace_service_filter(text, variables, tw, report)
        non_empty += 1
        check_multi_equality(text, variables, tw, report)
        if typ == "prometheus":
            if panel.get("type") == "timeseries" and "histogram_quantile(" in text and any(
                    h in text for h in EXEMPLAR_HISTOGRAMS) and t.get("exemplar") is not True:
                report.bad(tw, "latency time series over an exemplar-carrying histogram "
                               "without \"exemplar\": true")
            if t.get("exemplar") is True and any(h in text for h in
                                                 UNRESOLVABLE_EXEMPLAR_HISTOGRAMS):
                report.bad(tw, "\"exemplar\": true over the collector's span metrics: those "
                               "exemplars are picked before tail sampling and often point at "
                               "traces that were never stored")
        kind = "servicemap" if t.get("queryType") == "serviceMap" else "panel"
        queries.append(Query(uid, title, panel.get("title") or "", panel.get("id"), ref or "",
                             kind, typ, text, exemplar=bool(t.get("exemplar")),
                             instant=bool(t.get("instant"))))
    if not non_empty and len(report.problems) == problems_before:
        report.bad(where, "no target with a non-empty query")


# --------------------------------------------------------------------------- emitting


def metric_names(expr: str) -> list[str]:
    """Metric names referenced by a PromQL expression (best effort)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN"}
    names = []
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(?!\w)(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name in keywords or name in names:
            continue
        names.append(name)
    return names


def rule_name(*parts) -> str:
    return ":".join(re.sub(r"[^A-Za-z0-9_]", "_", str(p)) for p in ("dashboard", *parts))


def expand(queries: list[Query], variables_of: dict, report: Report) -> list[dict]:
    rows = []
    for q in queries:
        where = f"{q.dashboard}: {q.panel} {q.ref_id}"
        q.expr = substitute(q.raw, variables_of.get(q.dashboard, {}), where, report)
        lexical_check(q.expr, where, report)
        base = {"dashboard": q.dashboard, "dashboard_title": q.dashboard_title,
                "panel": q.panel, "panel_id": q.panel_id, "refId": q.ref_id, "kind": q.kind,
                "datasource": q.ds_type, "raw_expr": q.raw}
        if q.kind == "servicemap":
            for n, tmpl in enumerate(SERVICE_MAP_METRICS, 1):
                expr = tmpl.replace("{sel}", q.expr.strip())
                rows.append({**base, "kind": "servicemap", "datasource": "prometheus",
                             "expr": expr, "exemplar": False, "instant": True,
                             "record": rule_name(q.dashboard, q.panel_id, q.ref_id,
                                                 f"servicemap{n}")})
            continue
        if q.kind == "variable":
            record = rule_name(q.dashboard, "var", q.ref_id)
        elif q.kind == "annotation":
            record = rule_name(q.dashboard, "annotation", q.ref_id)
        else:
            record = rule_name(q.dashboard, q.panel_id, q.ref_id)
        rows.append({**base, "expr": q.expr, "exemplar": q.exemplar, "instant": q.instant,
                     "record": record})
    for r in rows:
        if r["datasource"] == "prometheus":
            r["metrics"] = metric_names(r["expr"])
    return rows


def write_rules(rows: list[dict], path: Path) -> int:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["datasource"] == "prometheus":
            groups.setdefault(r["dashboard"], []).append(r)
    out = ["# Generated by scripts/grafana/check_dashboards.py: every PromQL expression of the",
           "# Grafana dashboards, variables substituted, for `promtool check rules`.",
           "groups:"]
    n = 0
    for dash, rs in groups.items():
        out.append(f"  - name: {json.dumps('dashboard-' + dash)}")
        out.append("    rules:")
        for r in rs:
            out.append(f"      - record: {r['record']}")
            out.append(f"        expr: {json.dumps(r['expr'], ensure_ascii=False)}")
            n += 1
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return n


def find_promtool(choice: str) -> Path | None:
    if choice == "never":
        return None
    if choice != "auto":
        return Path(choice)
    cache = os.environ.get("OTEL_DEMO_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "otel-rust-demo")
    tools = Path(cache) / "tools"
    if tools.is_dir():
        found = sorted(p for p in tools.rglob("promtool") if p.is_file() and os.access(p, os.X_OK))
        if found:
            return found[-1]
    which = shutil.which("promtool")
    return Path(which) if which else None


def run_promtool(promtool: Path, rules: Path, report: Report) -> None:
    if not promtool.is_file():
        report.bad("promtool", f"{promtool} does not exist")
        return
    try:
        version = subprocess.run([str(promtool), "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()[:1]
        res = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        report.bad("promtool", f"cannot run {promtool}: {e}")
        return
    out = (res.stdout + res.stderr).strip()
    if res.returncode != 0:
        report.bad("promtool check rules", f"failed ({promtool}):\n{out}")
    else:
        report.note(f"promtool check rules: OK ({promtool}; {' '.join(version)}) "
                    f"{out.splitlines()[-1] if out else ''}")


# --------------------------------------------------------------------------- driver


@dataclass
class Result:
    report: Report
    rows: list[dict]
    dashboards: list[tuple[str, str, int]]  # (uid, file, panel count)


def run_checks(dashboards_dir: Path, datasources: Path, providers: Path) -> Result:
    report = Report()
    links: list = []
    uids = check_datasources(datasources, report, links)
    check_providers(providers, report)
    files = sorted(dashboards_dir.glob("*.json"))
    if not files:
        report.bad(str(dashboards_dir), "no dashboard JSON files")
    seen: dict = {}
    queries: list[Query] = []
    variables_of: dict[str, dict] = {}
    summary = []
    for f in files:
        check_dashboard(f, uids, report, seen, queries)
        try:
            dash = json.loads(f.read_text(encoding="utf-8"))
            uid = dash.get("uid") or f"<no uid: {f.stem}>"
            variables_of[uid] = {v.get("name"): v for v in
                                 (dash.get("templating") or {}).get("list") or []
                                 if isinstance(v, dict)}
            n = sum(1 for p, _ in iter_panels(dash.get("panels")) if p.get("type") != "row")
            summary.append((uid, f.name, n))
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    rows = expand(queries, variables_of, report)
    for n, (typ, name, text) in enumerate(links, 1):
        where = f"{datasources.name}: {name}"
        expr = substitute_link(text, where, report)
        lexical_check(expr, where, report)
        row = {"dashboard": "datasources", "dashboard_title": datasources.name, "panel": name,
               "panel_id": None, "refId": str(n), "kind": "datasource-link",
               "datasource": typ, "raw_expr": text, "expr": expr, "exemplar": False,
               "instant": False, "record": rule_name("datasources", "link", n)}
        if typ == "prometheus":
            row["metrics"] = metric_names(expr)
        rows.append(row)
    return Result(report, rows, summary)


def self_test(args) -> int:
    """Breaks copies of the real files one way at a time and expects the check to fail."""
    base = run_checks(args.dashboards, args.datasources, args.providers)
    if base.report.problems:
        print("self-test: the unmodified files already have problems:", file=sys.stderr)
        for p in base.report.problems:
            print(f"  {p}", file=sys.stderr)
        return 1

    def first_leaf(d):
        return next(p for p, _ in iter_panels(d["panels"]) if p.get("type") not in ("row", "text"))

    def nested_leaf(d):
        return next(p for p, parent in iter_panels(d["panels"])
                    if parent is not None and parent.get("collapsed"))

    def latency_target(d):
        for p, _ in iter_panels(d["panels"]):
            for t in p.get("targets") or []:
                if p.get("type") == "timeseries" and t.get("exemplar"):
                    return t
        raise LookupError("no exemplar target")

    first_expr = lambda d: first_leaf(d)["targets"][0]["expr"]  # noqa: E731
    # name: (dashboard file, mutation, text the resulting problem must contain)
    dash_cases = {
        "panel without targets": (
            "overview.json", lambda d: first_leaf(d).update(targets=[]), "has no targets"),
        "unknown datasource uid": (
            "overview.json", lambda d: first_leaf(d)["targets"][0].update(
                datasource={"type": "prometheus", "uid": "no-such-uid"}),
            "unknown datasource uid 'no-such-uid'"),
        "collapsed row's nested panel with empty expr": (
            "collector-health.json", lambda d: nested_leaf(d)["targets"][0].update(expr="  "),
            "empty expr"),
        "collapsed row's nested panel without targets": (
            "collector-health.json", lambda d: nested_leaf(d).pop("targets"), "has no targets"),
        "duplicate panel id": (
            "overview.json", lambda d: first_leaf(d).update(id=d["panels"][0]["id"]),
            "duplicate panel id"),
        "undefined variable": (
            "overview.json", lambda d: first_leaf(d)["targets"][0].update(
                expr=first_expr(d).replace("$__rate_interval", "$nope")),
            "undefined variable $nope"),
        "missing uid": ("k6.json", lambda d: d.pop("uid"), "missing uid"),
        "exemplar off on a latency panel": (
            "overview.json", lambda d: latency_target(d).update(exemplar=False),
            "without \"exemplar\": true"),
        "exemplar on pre-sampling span metrics": (
            "order-pipeline.json", lambda d: next(
                t for p, _ in iter_panels(d["panels"]) for t in p.get("targets") or []
                if "traces_span_metrics_duration_seconds_bucket" in t.get("expr", "")
            ).update(exemplar=True), "picked before tail sampling"),
        "unbalanced PromQL": (
            "overview.json", lambda d: first_leaf(d)["targets"][0].update(
                expr=first_expr(d) + ")"), "unbalanced"),
        "service map filtered on source": (
            "overview.json", lambda d: next(
                t for p, _ in iter_panels(d["panels"]) for t in p.get("targets") or []
                if t.get("queryType") == "serviceMap").update(
                    serviceMapQuery='{source="collector"}'), "empties one of them"),
        "regex variable without allValue": (
            "overview.json", lambda d: next(v for v in d["templating"]["list"]
                                            if v["name"] == "log_service").pop("allValue"),
            "no allValue"),
        "allValue matching the empty string": (
            "overview.json", lambda d: next(v for v in d["templating"]["list"]
                                            if v["name"] == "log_service").update(
                                                allValue=".*"), "matches the empty string"),
        "trace filter from HTTP-only service variable": (
            "overview.json", lambda d: next(v for v in d["templating"]["list"]
                                            if v["name"] == "service").update(
                query="label_values(http_server_request_duration_seconds_count, job)"),
            "draw it from span metrics"),
        "no data-delay panel": (
            "resilience.json", lambda d: d.update(panels=[
                p for p in d["panels"] if p.get("type") != "text"]), "When data shows"),
        "multi-value variable with =": (
            "overview.json", lambda d: first_leaf(d)["targets"][0].update(
                expr='up{job="$service"}'), "multi-value variable $service"),
    }
    ds_text = args.datasources.read_text(encoding="utf-8")
    ds_cases = {
        "unescaped $ in datasources.yaml": (
            lambda s: s.replace("$${__value.raw}", "${__value.raw}"), "environment variable"),
        "no traceID exemplar destination": (
            lambda s: s.replace("- name: traceID", "- name: trace_id_other"), "'traceID'"),
        "negative traceQuery start shift": (
            lambda s: s.replace("spanStartTimeShift: 30m", "spanStartTimeShift: -30m"),
            "traceQuery.spanStartTimeShift must be positive"),
        "positive traces-to-logs start shift": (
            lambda s: s.replace("spanStartTimeShift: -2m", "spanStartTimeShift: 2m"),
            "tracesToLogsV2.spanStartTimeShift must be negative"),
        "traces-to-logs without custom query": (
            lambda s: s.replace("customQuery: true", "customQuery: false"), "customQuery"),
        "duplicate key in datasources.yaml": (
            lambda s: s.replace("    uid: prometheus\n", "    uid: prometheus\n    uid: tempo\n", 1),
            "duplicate key 'uid'"),
    }
    failures = 0
    with tempfile.TemporaryDirectory(prefix="grafana-selftest-") as tmp:
        tmp = Path(tmp)
        for name, (fname, mutate, expect) in dash_cases.items():
            ddir = tmp / "d"
            shutil.rmtree(ddir, ignore_errors=True)
            shutil.copytree(args.dashboards, ddir)
            path = ddir / fname
            dash = json.loads(path.read_text(encoding="utf-8"))
            mutate(dash)
            path.write_text(json.dumps(dash), encoding="utf-8")
            res = run_checks(ddir, args.datasources, args.providers)
            failures += _expect(name, res.report.problems, expect)
        for name, (mutate, expect) in ds_cases.items():
            ds = tmp / "datasources.yaml"
            changed = mutate(ds_text)
            if changed == ds_text:
                print(f"self-test {name}: mutation did not apply", file=sys.stderr)
                failures += 1
                continue
            ds.write_text(changed, encoding="utf-8")
            res = run_checks(args.dashboards, ds, args.providers)
            failures += _expect(name, res.report.problems, expect)
    print(f"self-test: {len(dash_cases) + len(ds_cases) - failures} of "
          f"{len(dash_cases) + len(ds_cases)} broken copies rejected as expected")
    return 1 if failures else 0


def _expect(name: str, problems: list[str], expect: str) -> int:
    hit = [p for p in problems if expect in p]
    if hit:
        print(f"self-test ok   {name}: {hit[0]}")
        return 0
    print(f"self-test FAIL {name}: expected a problem containing {expect!r}, got "
          f"{problems or 'none'}", file=sys.stderr)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description="Static checks for Grafana provisioning and "
                                             "dashboards; emits their PromQL.")
    ap.add_argument("--dashboards", type=Path, default=DEFAULT_DASHBOARDS)
    ap.add_argument("--datasources", type=Path, default=DEFAULT_DATASOURCES)
    ap.add_argument("--providers", type=Path, default=DEFAULT_PROVIDERS)
    ap.add_argument("--emit-rules", type=Path, metavar="FILE",
                    help="write the PromQL as recording rules for promtool check rules")
    ap.add_argument("--emit-queries", type=Path, metavar="FILE",
                    help="write the PromQL as JSON [{dashboard, panel, refId, expr, ...}]")
    ap.add_argument("--emit-other-queries", type=Path, metavar="FILE",
                    help="write the LogQL and TraceQL queries as JSON")
    ap.add_argument("--promtool", default="auto",
                    help="auto (tool cache, then PATH), never, or a path (default: auto)")
    ap.add_argument("--self-test", action="store_true",
                    help="break copies of the files and check that each break is caught")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    if args.self_test:
        return self_test(args)

    res = run_checks(args.dashboards, args.datasources, args.providers)
    report, rows = res.report, res.rows
    prom_rows = [r for r in rows if r["datasource"] == "prometheus"]
    other_rows = [r for r in rows if r["datasource"] != "prometheus"]

    promtool = find_promtool(args.promtool)
    rules_path = args.emit_rules
    tmpdir = None
    if promtool and not rules_path:
        tmpdir = tempfile.TemporaryDirectory(prefix="grafana-rules-")
        rules_path = Path(tmpdir.name) / "dashboards.rules.yml"
    for out in (args.emit_rules, args.emit_queries, args.emit_other_queries):
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
    if rules_path:
        n = write_rules(rows, rules_path)
        if args.emit_rules:
            report.note(f"wrote {n} recording rules to {rules_path}")
    if args.emit_queries:
        args.emit_queries.write_text(json.dumps(prom_rows, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
        report.note(f"wrote {len(prom_rows)} PromQL queries to {args.emit_queries}")
    if args.emit_other_queries:
        args.emit_other_queries.write_text(
            json.dumps([{k: r[k] for k in ("dashboard", "panel", "panel_id", "refId",
                                           "datasource", "expr", "raw_expr")}
                        for r in other_rows], indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")
        report.note(f"wrote {len(other_rows)} LogQL/TraceQL queries to "
                    f"{args.emit_other_queries}")
    if promtool:
        run_promtool(promtool, rules_path, report)
    elif args.promtool == "auto":
        report.note("promtool not found (tool cache or PATH): PromQL checked lexically only")
    if tmpdir:
        tmpdir.cleanup()

    if not args.quiet:
        for uid, fname, n in res.dashboards:
            print(f"dashboard {uid:<28} {fname:<24} {n:>3} panels")
        kinds = {}
        for r in rows:
            kinds[r["datasource"]] = kinds.get(r["datasource"], 0) + 1
        print("queries: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
        for n in report.notes:
            print(n)
    if report.problems:
        print(f"\n{len(report.problems)} problem(s):", file=sys.stderr)
        for p in report.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("grafana provisioning and dashboards: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
