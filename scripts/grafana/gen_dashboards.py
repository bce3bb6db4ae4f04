#!/usr/bin/env python3
"""Writes the demo's Grafana dashboards (grafana/dashboards/*.json) from one description.

The JSON files are the source Grafana loads; this script only keeps seven dashboards consistent
(datasource refs, units, layout, exemplar flags). Edit here, run it, commit both.

    python3 scripts/grafana/gen_dashboards.py            # (re)write the JSON files
    python3 scripts/grafana/gen_dashboards.py --check    # fail if the files differ from this script

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "grafana" / "dashboards"

SCHEMA_VERSION = 42  # dashboard JSON schema of Grafana 12.x/13.x (older ones are migrated on load)

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}

RI = "$__rate_interval"
HTTP_SERVER = "http_server_request_duration_seconds"
HTTP_CLIENT = "http_client_request_duration_seconds"
SPANS = "traces_span_metrics_calls_total"
# Collector span_metrics connector, histogram unit s (observability/otel-collector.yaml).
# Its exemplars are picked before tail sampling and may point at dropped traces, so its
# latency panels show no exemplar dots; Tempo's generator series carry resolvable ones.
SPAN_DUR = "traces_span_metrics_duration_seconds_bucket"
# Both the collector and Tempo write traces_service_graph_*; `source` tells them apart.
FROM_COLLECTOR = 'source="collector"'
SERVER_OR_CONSUMER = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"'


# --------------------------------------------------------------------------- targets


def prom(expr: str, legend: str = "__auto", *, exemplar: bool = False, instant: bool = False,
         fmt: str | None = None) -> dict:
    t = {
        "datasource": PROM,
        "editorMode": "code",
        "expr": expr,
        "exemplar": exemplar,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
    }
    if fmt:
        t["format"] = fmt
    return t


def loki(expr: str, legend: str = "__auto", *, query_type: str = "range") -> dict:
    return {"datasource": LOKI, "editorMode": "code", "expr": expr, "legendFormat": legend,
            "queryType": query_type}


def traceql(query: str, limit: int = 20) -> dict:
    return {"datasource": TEMPO, "queryType": "traceql", "query": query, "limit": limit,
            "spss": 3, "tableType": "traces", "filters": []}


def quantiles(metric_bucket: str, selector: str, by: str, legend_prefix: str,
              qs=(0.5, 0.95, 0.99), exemplar: bool = True) -> list[dict]:
    """histogram_quantile targets, one per quantile, grouped by `by` (plus le)."""
    out = []
    group = f"le, {by}" if by else "le"
    for q in qs:
        expr = (f"histogram_quantile({q}, sum by ({group}) "
                f"(rate({sel(metric_bucket, selector)}[{RI}])))")
        label = f"p{int(round(q * 100))}"
        out.append(prom(expr, f"{legend_prefix} {label}".strip(), exemplar=exemplar))
    return out


# --------------------------------------------------------------------------- panels


def _field_defaults(unit: str, *, decimals=None, mappings=None, thresholds=None, min0=True,
                    custom=None, color=None) -> dict:
    d = {
        "unit": unit,
        "color": color or {"mode": "palette-classic"},
        "mappings": mappings or [],
        "thresholds": thresholds or {"mode": "absolute",
                                     "steps": [{"color": "green", "value": None}]},
    }
    if min0:
        d["min"] = 0
    if decimals is not None:
        d["decimals"] = decimals
    if custom is not None:
        d["custom"] = custom
    return d


def timeseries(title: str, targets: list[dict], *, unit: str = "short", desc: str = "",
               stack: bool = False, bars: bool = False, ds: dict = PROM, min0: bool = True,
               decimals=None, legend_table: bool = False) -> dict:
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else (25 if stack else 8),
        "gradientMode": "none",
        "showPoints": "never",
        "pointSize": 4,
        "spanNulls": False,
        "lineInterpolation": "linear",
        "axisPlacement": "auto",
        "axisSoftMin": 0 if min0 else None,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "off"},
    }
    if custom["axisSoftMin"] is None:
        del custom["axisSoftMin"]
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": ds,
        "targets": targets,
        "fieldConfig": {"defaults": _field_defaults(unit, decimals=decimals, custom=custom,
                                                    min0=min0),
                        "overrides": []},
        "options": {
            "legend": {"displayMode": "table" if legend_table else "list",
                       "placement": "bottom", "showLegend": True,
                       "calcs": ["mean", "max"] if legend_table else []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title: str, targets: list[dict], *, unit: str = "short", desc: str = "",
         thresholds=None, mappings=None, decimals=None, ds: dict = PROM,
         color_mode: str = "value", graph: bool = True) -> dict:
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": ds,
        "targets": targets,
        "fieldConfig": {"defaults": _field_defaults(unit, decimals=decimals, mappings=mappings,
                                                    thresholds=thresholds,
                                                    color={"mode": "thresholds"}),
                        "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color_mode,
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
    }


def state_timeline(title: str, targets: list[dict], *, mappings, desc: str = "") -> dict:
    return {
        "type": "state-timeline",
        "title": title,
        "description": desc,
        "datasource": PROM,
        "targets": targets,
        "fieldConfig": {"defaults": _field_defaults("none", mappings=mappings,
                                                    color={"mode": "thresholds"},
                                                    custom={"fillOpacity": 80, "lineWidth": 0}),
                        "overrides": []},
        "options": {"mergeValues": True, "showValue": "auto", "alignValue": "left",
                    "rowHeight": 0.8,
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "single", "sort": "none"}},
    }


def logs(title: str, expr: str, desc: str = "") -> dict:
    return {
        "type": "logs",
        "title": title,
        "description": desc,
        "datasource": LOKI,
        "targets": [loki(expr, legend="")],
        "options": {"showTime": True, "showLabels": False, "showCommonLabels": False,
                    "wrapLogMessage": True, "prettifyLogMessage": False,
                    "enableLogDetails": True, "enableInfiniteScrolling": True,
                    "dedupStrategy": "none", "sortOrder": "Descending"},
    }


def trace_table(title: str, query: str, desc: str = "", limit: int = 20) -> dict:
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "datasource": TEMPO,
        "targets": [traceql(query, limit)],
        "fieldConfig": {"defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
                        "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    }


def service_map(title: str, selector: str, desc: str = "") -> dict:
    return {
        "type": "nodeGraph",
        "title": title,
        "description": desc,
        "datasource": TEMPO,
        "targets": [{"datasource": TEMPO, "queryType": "serviceMap",
                     "serviceMapQuery": selector}],
        "options": {},
    }


# How long after the first request each kind of data shows, from the intervals the configs set
# (the services' /metrics scraped every 5 s, OTLP metrics every 15 s, span metrics flushed every
# 15 s, tail sampling decides after 10 s). Rates need two samples inside $__rate_interval (at
# least 1 minute here), so a rate line starts after two samples and settles after a minute.
DELAY_HTTP = ("**HTTP rates and latency** (the services' `/metrics`, scraped every 5 s): "
              "first points about 15 s after traffic starts, steady after a minute.")
DELAY_OTLP = ("**Counters the services push over OTLP** (orders, breaker, outbox, consumer "
              "lag): every 15 s, so the first rate point needs about 30 s.")
DELAY_SPAN_METRICS = ("**Span metrics and the service graph** (computed by the collector, "
                      "flushed every 15 s): about 30 s.")
DELAY_TRACES = ("**Traces**: in Tempo after the collector's tail-sampling decision, 10 s after "
                "the trace's first span; only kept traces (errors, slow, exemplar traces and a "
                "10% baseline) are stored.")
DELAY_TEMPO_METRICS = ("**Tempo's generator series**: its 15 s collection plus remote write, "
                       "about 30 s after a trace is stored.")
DELAY_LOGS = "**Logs**: in Loki within a few seconds (the collector batches for 1 s)."
DELAY_COLLECTOR = ("**The collector's own metrics** (Prometheus scrapes it every 5 s): "
                   "first rate points after about 10 s.")
DELAY_SLO = ("**SLO series** (Prometheus recording rules over the metrics above, evaluated "
             "every 5 s): the 5-minute error ratio after about a minute of traffic; a burn rate "
             "over a longer window (1 h to 3 d) averages over what there is until the stack is "
             "that old, so a young stack's slow alerts are quick to fire.")
DELAY_K6 = ("**k6 results**: only while `docker compose --profile load run --rm k6` runs; k6 "
            "exports every 5 s, so the first points appear about 10 s after it starts.")


def data_delay(*lines: str) -> dict:
    """A text panel saying when each panel's data shows, instead of a silent "No data"."""
    body = "\n".join(f"- {line}" for line in lines)
    return {
        "type": "text",
        "title": "When data shows",
        "options": {"mode": "markdown", "content": (
            "No data yet? Send traffic (`curl -s localhost:8080/api/products`, or the load "
            "profile) and wait:\n\n" + body)},
    }


BREAKER_MAPPINGS = [{
    "type": "value",
    "options": {
        "0": {"text": "closed", "color": "green", "index": 0},
        "1": {"text": "open", "color": "red", "index": 1},
        "2": {"text": "half-open", "color": "yellow", "index": 2},
    },
}]


def red_above(limit: float, warn: float | None = None) -> dict:
    steps = [{"color": "green", "value": None}]
    if warn is not None:
        steps.append({"color": "orange", "value": warn})
    steps.append({"color": "red", "value": limit})
    return {"mode": "absolute", "steps": steps}


# --------------------------------------------------------------------------- layout


class Layout:
    """Places panels left to right on a 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self._collapsed: dict | None = None

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def row(self, title: str, *, collapsed: bool = False) -> None:
        self._newline()
        row = {"type": "row", "title": title, "id": self.next_id, "collapsed": collapsed,
               "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []}
        self.next_id += 1
        self.panels.append(row)
        self.y += 1
        self._collapsed = row if collapsed else None

    def add(self, panel: dict, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel = dict(panel)
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        for i, t in enumerate(panel.get("targets", [])):
            t.setdefault("refId", chr(ord("A") + i))
        if not panel.get("description"):
            panel.pop("description", None)
        # Key order: id, type, title first, for readable diffs.
        ordered = {k: panel[k] for k in ("id", "type", "title") if k in panel}
        ordered.update({k: v for k, v in panel.items() if k not in ordered})
        (self._collapsed["panels"] if self._collapsed else self.panels).append(ordered)
        self.x += w
        self.row_h = max(self.row_h, h)


# --------------------------------------------------------------------------- dashboards


def query_var(name: str, label: str, query: str, *, ds: dict = PROM, multi: bool = True,
              include_all: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": ds,
        "query": query,
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "options": [],
        "hide": 0,
        "regex": "",
    } | ({"allValue": ALL_VALUE} if include_all else {})


# "All" as one regex instead of (a|b|...): it still parses when the variable has no values yet
# (Loki answers HTTP 400 to service_name=~"()"), and it cannot match the empty string, which
# Loki refuses in a stream selector.
ALL_VALUE = ".+"


def constant_var(name: str, value: str) -> dict:
    return {"name": name, "type": "constant", "query": value, "hide": 2,
            "current": {"text": value, "value": value}, "options": [],
            "skipUrlSync": True}


def textbox_var(name: str, label: str, value: str) -> dict:
    return {"name": name, "label": label, "type": "textbox", "query": value, "hide": 0,
            "current": {"text": value, "value": value}, "options": []}


def dashboard(uid: str, title: str, description: str, layout: Layout, *, tags: list[str],
              variables: list[dict] | None = None, annotations: list[dict] | None = None,
              time_from: str = "now-30m") -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["otel-demo", *tags],
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "weekStart": "",
        "links": [{"type": "dashboards", "title": "Demo dashboards", "tags": ["otel-demo"],
                   "asDropdown": True, "includeVars": False, "keepTime": True,
                   "targetBlank": False, "icon": "external link", "tooltip": "", "url": ""}],
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard",
        }, *(annotations or [])]},
        "templating": {"list": variables or []},
        "panels": layout.panels,
    }


def sel(metric: str, selector: str) -> str:
    """metric{selector}, or the bare metric name when there is no selector."""
    return f"{metric}{{{selector}}}" if selector else metric


def rate_of(metric: str, selector: str, by: str, window: str = RI) -> str:
    return f"sum by ({by}) (rate({sel(metric, selector)}[{window}]))"


def ratio(errors: str, total: str) -> str:
    """errors / total, and 0 (not "no data") for a group with traffic but no errors yet."""
    return f"({errors} or {total} * 0) / {total}"


def ratio_5xx(selector: str, by: str) -> str:
    sel5 = f'{selector}, http_response_status_code=~"5.."' if selector else \
        'http_response_status_code=~"5.."'
    return ratio(rate_of(HTTP_SERVER + "_count", sel5, by),
                 rate_of(HTTP_SERVER + "_count", selector, by))


def overview() -> dict:
    svc = 'job=~"$service"'
    L = Layout()
    L.add(data_delay(DELAY_HTTP, DELAY_SPAN_METRICS, DELAY_TRACES, DELAY_TEMPO_METRICS, DELAY_LOGS), 24, 8)
    L.row("Golden signals: $service")
    L.add(stat("Requests / s", [prom(f"sum(rate({HTTP_SERVER}_count{{{svc}}}[{RI}]))")],
               unit="reqps", decimals=1), 6, 4)
    L.add(stat("5xx ratio", [prom(ratio(
        f'sum(rate({HTTP_SERVER}_count{{{svc}, http_response_status_code=~"5.."}}[{RI}]))',
        f"sum(rate({HTTP_SERVER}_count{{{svc}}}[{RI}]))"))],
        unit="percentunit", decimals=2, thresholds=red_above(0.05, 0.01)), 6, 4)
    L.add(stat("p95 latency", [prom(
        f"histogram_quantile(0.95, sum by (le) (rate({HTTP_SERVER}_bucket{{{svc}}}[{RI}])))")],
        unit="s", decimals=3, thresholds=red_above(0.5, 0.2)), 6, 4)
    L.add(stat("Requests in range", [prom(
        f"sum(increase({HTTP_SERVER}_count{{{svc}}}[$__range]))")], unit="short", decimals=0,
        graph=False), 6, 4)
    L.add(timeseries("Request rate by service", [prom(rate_of(f"{HTTP_SERVER}_count", svc, "job"),
                                                      "{{job}}")],
                     unit="reqps",
                     desc="Rate of http_server_request_duration_seconds_count, scraped from each "
                          "service's /metrics. service-c has no HTTP routes and is absent here."),
          8, 8)
    L.add(timeseries("Error ratio (5xx) by service", [prom(ratio_5xx(svc, "job"), "{{job}}")],
                     unit="percentunit"), 8, 8)
    L.add(timeseries("Responses by status code", [prom(
        rate_of(f"{HTTP_SERVER}_count", svc, "http_response_status_code"),
        "{{http_response_status_code}}")], unit="reqps", stack=True), 8, 8)
    L.add(timeseries("Latency p50 / p95 / p99 by service",
                     quantiles(f"{HTTP_SERVER}_bucket", svc, "job", "{{job}}"), unit="s",
                     desc="Exemplar dots carry the trace id (label trace_id) of a request that "
                          "landed in that bucket; click one to open the trace in Tempo."),
          12, 9)
    L.add(timeseries("p95 latency by route", [prom(
        f"histogram_quantile(0.95, sum by (le, job, http_request_method, http_route) "
        f"(rate({HTTP_SERVER}_bucket{{{svc}}}[{RI}])))",
        "{{job}} {{http_request_method}} {{http_route}}", exemplar=True)], unit="s"), 12, 9)

    L.row("Outgoing calls")
    L.add(timeseries("Outgoing call rate by peer", [prom(
        rate_of(f"{HTTP_CLIENT}_count", svc, "job, server_address, server_port"),
        "{{job}} → {{server_address}}:{{server_port}}")], unit="reqps"), 8, 8)
    L.add(timeseries("Outgoing call p95 by peer", [prom(
        f"histogram_quantile(0.95, sum by (le, job, server_address, server_port) "
        f"(rate({HTTP_CLIENT}_bucket{{{svc}}}[{RI}])))",
        "{{job}} → {{server_address}}:{{server_port}}", exemplar=True)], unit="s"), 8, 8)
    L.add(timeseries("Outgoing call failures by error type", [prom(
        rate_of(f"{HTTP_CLIENT}_count", f'{svc}, error_type!=""',
                "job, server_address, server_port, error_type"),
        "{{job}} → {{server_address}}:{{server_port}}: {{error_type}}")], unit="reqps",
        stack=True,
        desc="error_type is a status code or a transport error class (timeout, connect, ...)."),
          8, 8)

    L.row("Traces")
    L.add(service_map("Service graph", "",
                      desc="Tempo's service map: edges from the collector's service_graph "
                           "connector (every request, before sampling), the only writer of "
                           "traces_service_graph_*. No filter: the table beside the graph "
                           "reads Tempo's traces_spanmetrics_*, which carry other labels."),
          12, 11)
    L.add(timeseries("Service graph edges: requests and failures", [
        prom(rate_of("traces_service_graph_request_total", FROM_COLLECTOR, "client, server"),
             "{{client}} → {{server}}"),
        prom(rate_of("traces_service_graph_request_failed_total", FROM_COLLECTOR,
                     "client, server"), "{{client}} → {{server}} failed"),
    ], unit="reqps",
        desc="Collector service_graph connector (source=\"collector\"). Tempo's generator "
             "writes the same names from sampled traces only (source=\"tempo\")."), 12, 11)
    L.add(timeseries("Span p95 by service (collector span metrics)", [prom(
        f"histogram_quantile(0.95, sum by (le, service_name) "
        f"(rate({SPAN_DUR}{{{SERVER_OR_CONSUMER}}}[{RI}])))",
        "{{service_name}}")], unit="s",
        desc="Server and consumer spans, every one, measured by the collector before tail "
             "sampling. No exemplar dots: they are picked before sampling and may not resolve."),
          12, 8)
    L.add(timeseries("Server span p95 (Tempo metrics generator)", [prom(
        f"histogram_quantile(0.95, sum by (le, service) "
        f'(rate(traces_spanmetrics_latency_bucket{{span_kind="SPAN_KIND_SERVER", '
        f'service=~"$service"}}[{RI}])))',
        "{{service}}", exemplar=True)], unit="s",
        desc="Tempo's span metrics from the traces tail sampling kept (errors and slow traces "
             "are over-represented). Every exemplar dot (label traceID) resolves."), 12, 8)
    L.add(trace_table("Traces behind exemplars",
                      '{ span.demo.exemplar = true && resource.service.name =~ '
                      '"${service:regex}" }',
                      desc="Server spans whose trace id became an exemplar are marked "
                           "demo.exemplar=true, and tail sampling keeps those traces."),
          12, 10)
    L.add(trace_table("Recent error traces",
                      '{ status = error && resource.service.name =~ "${service:regex}" }'),
          12, 10)

    L.row("Logs: $log_service")
    L.add(timeseries("Log lines by service", [loki(
        'sum by (service_name) (count_over_time({service_name=~"${log_service:regex}"} '
        '[$__auto]))', "{{service_name}}")], unit="short", ds=LOKI, bars=True, stack=True),
          12, 8)
    L.add(timeseries("Warnings and errors by service", [loki(
        'sum by (service_name, severity_text) (count_over_time('
        '{service_name=~"${log_service:regex}"} | severity_text=~"WARN|ERROR" [$__auto]))',
        "{{service_name}} {{severity_text}}")], unit="short", ds=LOKI, bars=True, stack=True),
          12, 8)
    L.add(logs("Logs", '{service_name=~"${log_service:regex}"}',
               desc="OTLP logs in Loki. Open a line: its trace_id (structured metadata) links "
                    "to the trace in Tempo."), 24, 12)

    return dashboard(
        "otel-demo-overview", "OpenTelemetry demo / Service overview",
        "RED per service with exemplars, service graph, traces and logs.", L,
        tags=["red", "overview"],
        variables=[
            # From span metrics, not HTTP metrics: service-c serves no business route, and
            # the trace panels below must still offer it.
            query_var("service", "Service",
                      f"label_values({SPANS}, service_name)"),
            query_var("log_service", "Log service", "label_values(service_name)", ds=LOKI),
        ])


DLQ = 'messaging_process_messages_total{outcome="dead_lettered"}'


def orders() -> dict:
    L = Layout()
    L.add(data_delay(DELAY_OTLP, DELAY_SPAN_METRICS, DELAY_TRACES), 24, 6)
    L.row("Orders at a glance")
    L.add(stat("Orders created", [prom("sum(increase(orders_created_total[$__range]))")],
               decimals=0, desc="In the selected time range."), 4, 4)
    L.add(stat("Orders fulfilled", [prom(
        'sum(increase(messaging_process_messages_total{outcome="fulfilled"}[$__range])) or vector(0)')],
        decimals=0), 4, 4)
    L.add(stat("Dead-lettered", [prom(
        'sum(increase(messaging_process_messages_total{outcome="dead_lettered"}[$__range])) or vector(0)')],
        decimals=0, thresholds=red_above(1), desc="Messages sent to the DLQ topic."), 4, 4)
    L.add(stat("Outbox depth", [prom("max(outbox_pending)")], decimals=0,
               thresholds=red_above(100, 1),
               desc="Events waiting in service-a's Postgres outbox (not yet handed to "
                    "service-b)."), 4, 4)
    L.add(stat("Consumer lag", [prom(
        "sum(max by (messaging_destination_name, messaging_destination_partition_id) "
        "(messaging_kafka_consumer_lag))")], decimals=0, thresholds=red_above(1000, 100)),
          4, 4)
    L.add(stat("Order → fulfilment p95", [prom(
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(orders_fulfilment_duration_seconds_bucket[{RI}])))")], unit="s", decimals=2),
          4, 4)

    L.row("Flow through Kafka")
    L.add(timeseries("Orders created / s", [prom(
        f"sum by (job) (rate(orders_created_total[{RI}]))", "{{job}}")], unit="ops"), 8, 8)
    L.add(timeseries("Kafka produce rate", [prom(
        rate_of(SPANS, 'span_kind="SPAN_KIND_PRODUCER"', "service_name, span_name"),
        "{{service_name}}: {{span_name}}")], unit="ops",
        desc="Producer spans per second (collector span metrics, before sampling)."), 8, 8)
    L.add(timeseries("Kafka consume rate", [prom(
        rate_of(SPANS, 'span_kind="SPAN_KIND_CONSUMER"', "service_name, span_name"),
        "{{service_name}}: {{span_name}}")], unit="ops"), 8, 8)
    L.add(timeseries("Processing outcomes", [prom(
        f"sum by (outcome) (rate(messaging_process_messages_total[{RI}]))", "{{outcome}}")],
        unit="ops", stack=True, desc="fulfilled, duplicate (idempotent skip), dead_lettered."),
          8, 8)
    L.add(timeseries("Consumer lag by partition", [prom(
        "max by (messaging_destination_name, messaging_destination_partition_id) "
        "(messaging_kafka_consumer_lag)",
        "{{messaging_destination_name}}/{{messaging_destination_partition_id}}")],
        unit="short"), 8, 8)
    L.add(timeseries("Dead-lettered messages", [prom(
        # `or ... unless offset`: the first dead letter creates the series, and increase()
        # over a new series' first samples would show 0.
        f'sum(increase({DLQ}[{RI}])) > 0 or sum({DLQ} unless {DLQ} offset {RI})',
        "dead-lettered")], unit="short", bars=True), 8, 8)

    L.row("Latency and backlog")
    L.add(timeseries("Order accepted → fulfilled (p50 / p95)",
                     quantiles("orders_fulfilment_duration_seconds_bucket", "", "", "",
                               qs=(0.5, 0.95), exemplar=False),
                     unit="s", desc="orders.fulfilment.duration, recorded by service-c."), 12, 8)
    L.add(timeseries("Message processing p95 by outcome", [prom(
        "histogram_quantile(0.95, sum by (le, outcome) "
        f"(rate(messaging_process_duration_seconds_bucket[{RI}])))", "{{outcome}}")],
        unit="s"), 12, 8)
    L.add(timeseries("Outbox depth", [prom("max by (job) (outbox_pending)", "{{job}}")],
                     unit="short"), 12, 8)
    L.add(timeseries("Kafka span p95 (producer / consumer)", [prom(
        "histogram_quantile(0.95, sum by (le, service_name, span_kind) "
        f'(rate({SPAN_DUR}{{span_kind=~"SPAN_KIND_PRODUCER|SPAN_KIND_CONSUMER"}}[{RI}])))',
        "{{service_name}} {{span_kind}}")], unit="s"), 12, 8)

    L.row("Traces and logs")
    L.add(trace_table("Traces through Kafka",
                      '{ span.messaging.system = "kafka" && kind = consumer }',
                      desc="Consumer spans continue the producer's trace (context in the "
                           "message headers)."), 12, 10)
    L.add(logs("Producer and consumer logs", '{service_name=~"service-b|service-c"}'), 12, 10)

    return dashboard("otel-demo-orders", "OpenTelemetry demo / Order pipeline",
                     "Orders from HTTP to Kafka to fulfilment: rates, lag, DLQ, outbox.", L,
                     tags=["kafka", "orders"])


def resilience() -> dict:
    L = Layout()
    L.add(data_delay(DELAY_OTLP, DELAY_HTTP), 24, 5)
    L.row("Circuit breaker: service-a → service-b")
    L.add(stat("Breaker state", [prom("max by (breaker) (circuit_breaker_state)",
                                      "{{breaker}}")],
               mappings=BREAKER_MAPPINGS, unit="none", graph=False, color_mode="background",
               thresholds={"mode": "absolute", "steps": [
                   {"color": "green", "value": None}, {"color": "red", "value": 1},
                   {"color": "yellow", "value": 2}]}), 6, 4)
    L.add(stat("Rejected calls", [prom(
        "sum(increase(circuit_breaker_rejections_total[$__range])) or vector(0)")], decimals=0,
        thresholds=red_above(1), desc="Calls failed fast while the breaker was open."), 6, 4)
    L.add(stat("Transitions", [prom(
        "sum(increase(circuit_breaker_transitions_total[$__range])) or vector(0)")], decimals=0), 6, 4)
    L.add(stat("Events waiting in outbox", [prom("max(outbox_pending)")], decimals=0,
               thresholds=red_above(100, 1)), 6, 4)
    L.add(state_timeline("Breaker state over time", [prom(
        "max by (breaker) (circuit_breaker_state)", "{{breaker}}")],
        mappings=BREAKER_MAPPINGS,
        desc="circuit_breaker_state: 0 closed, 1 open, 2 half-open."), 24, 5)
    L.add(timeseries("Transitions", [prom(
        f"sum by (breaker, from, to) (increase(circuit_breaker_transitions_total[{RI}]))",
        "{{breaker}}: {{from}} → {{to}}")], unit="short", bars=True), 8, 8)
    L.add(timeseries("Rejected calls / s", [prom(
        f"sum by (breaker) (rate(circuit_breaker_rejections_total[{RI}]))", "{{breaker}}")],
        unit="ops"), 8, 8)
    L.add(timeseries("Fallback: events left in outbox", [prom(
        "max by (job) (outbox_pending)", "{{job}}")], unit="short",
        desc="While service-b is unreachable, events wait in the outbox with their trace "
             "context and are sent later."), 8, 8)

    L.row("Downstream calls")
    # service-b is picked by its port (8082 in compose and natively): server.address is a host
    # name, "service-b" in compose but 127.0.0.1 in a native run.
    L.add(timeseries("service-a → service-b calls by outcome", [prom(
        rate_of(f"{HTTP_CLIENT}_count", 'job="service-a", server_port="8082"',
                "http_response_status_code, error_type"),
        "{{http_response_status_code}} {{error_type}}")], unit="reqps", stack=True,
        desc="service-a's client requests to service-b (port 8082), by status or error."),
        12, 8)
    L.add(timeseries("service-a outgoing p95 by peer", [prom(
        "histogram_quantile(0.95, sum by (le, server_address, server_port) "
        f'(rate({HTTP_CLIENT}_bucket{{job="service-a"}}[{RI}])))',
        "{{server_address}}:{{server_port}}", exemplar=True)], unit="s"), 12, 8)

    L.row("Retries and injected faults")
    L.add(timeseries("Third-party retries / s", [prom(
        f"sum by (job, dependency) (rate(dependency_retries_total[{RI}]))",
        "{{job}} → {{dependency}}")], unit="ops"), 8, 8)
    L.add(timeseries("Injected faults / s", [prom(
        f"sum by (job, route, kind) (rate(faults_injected_total[{RI}]))",
        "{{job}} {{route}} {{kind}}")], unit="ops", stack=True,
        desc="FAULT_* settings or the admin endpoint: kind is latency or error."), 8, 8)
    L.add(timeseries("5xx ratio by service", [prom(ratio_5xx("", "job"), "{{job}}")],
                     unit="percentunit"), 8, 8)

    L.row("The same story in traces and logs")
    L.add(trace_table("Traces with a breaker transition",
                      '{ event:name = "circuit breaker state changed" }'), 12, 10)
    L.add(logs("Breaker log lines",
               '{service_name="service-a"} |= "circuit breaker state changed"'), 12, 10)

    # A counter series is born at its first increment, and increase() over a series' first
    # samples is 0: `unless ... offset` adds the series that appeared within the window, so the
    # breaker's very first opening is marked too.
    m = "circuit_breaker_transitions_total"
    transitions = (f"sum by (breaker, to) (increase({m}[1m])) > 0"
                   f" or sum by (breaker, to) ({m} unless {m} offset 1m)")
    annotation = {
        "datasource": PROM,
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "name": "Breaker transitions",
        # Both the legacy top-level expr and the query-editor target form.
        "expr": transitions,
        "target": {"datasource": PROM, "expr": transitions, "refId": "Anno", "interval": "30s"},
        "step": "30s",
        "titleFormat": "breaker {{breaker}} → {{to}}",
        "textFormat": "",
        "tagKeys": "breaker,to",
        "useValueForTime": False,
    }
    return dashboard("otel-demo-resilience", "OpenTelemetry demo / Resilience",
                     "Circuit breaker, outbox fallback, retries and injected faults.", L,
                     tags=["resilience", "circuit-breaker"], annotations=[annotation])


def auto_vs_manual() -> dict:
    auto = 'job=~"$auto_services"'
    manual = 'job=~"$manual_http"'
    c_consumer = 'service_name="service-c", span_kind="SPAN_KIND_CONSUMER"'
    c_consumer_error = c_consumer + ', status_code="STATUS_CODE_ERROR"'
    L = Layout()
    L.add(data_delay(DELAY_HTTP, DELAY_SPAN_METRICS), 24, 5)
    L.row("Request rate: auto (api-gateway, service-a, service-d) | manual (service-b, service-c)")
    L.add(timeseries("Auto: request rate", [prom(
        rate_of(f"{HTTP_SERVER}_count", auto, "job"), "{{job}}")], unit="reqps",
        desc="HTTP server metrics from middleware; handlers hold no telemetry code."), 12, 8)
    L.add(timeseries("Manual: request and message rate", [
        prom(rate_of(f"{HTTP_SERVER}_count", manual, "job"), "{{job}} (HTTP)"),
        prom(rate_of(SPANS, c_consumer, "service_name"), "{{service_name}} (consumer spans)"),
    ], unit="reqps",
        desc="service-b records its HTTP metrics by hand; service-c has no HTTP routes, so its "
             "rate comes from its consumer spans."), 12, 8)

    L.row("Errors")
    L.add(timeseries("Auto: 5xx ratio", [prom(ratio_5xx(auto, "job"), "{{job}}")],
                     unit="percentunit"), 12, 8)
    L.add(timeseries("Manual: error ratio", [
        prom(ratio_5xx(manual, "job"), "{{job}} (HTTP 5xx)"),
        prom(ratio(rate_of(SPANS, c_consumer_error, "service_name"),
                   rate_of(SPANS, c_consumer, "service_name")),
             "{{service_name}} (error spans)"),
    ], unit="percentunit"), 12, 8)

    L.row("Duration")
    L.add(timeseries("Auto: latency p50 / p95 / p99",
                     quantiles(f"{HTTP_SERVER}_bucket", auto, "job", "{{job}}"), unit="s"),
          8, 8)
    L.add(timeseries("Manual: service-b latency p50 / p95 / p99",
                     quantiles(f"{HTTP_SERVER}_bucket", manual, "job", "{{job}}"), unit="s"),
          8, 8)
    L.add(timeseries("Manual: service-c processing p50 / p95 / p99 (consumer spans)",
                     quantiles(SPAN_DUR, c_consumer, "service_name", "{{service_name}}",
                               exemplar=False),
                     unit="s", desc="From the collector's span metrics (service-c has no HTTP "
                                    "histograms). Exemplars: see the overview's Tempo panel."),
          8, 8)

    L.row("Same view from spans, every service")
    L.add(timeseries("Two sources, one number: HTTP metrics vs server spans (auto services)", [
        prom(rate_of(f"{HTTP_SERVER}_count", auto, "job"), "{{job}} /metrics"),
        prom(rate_of(SPANS, 'service_name=~"$auto_services", span_kind="SPAN_KIND_SERVER"',
                     "service_name"), "{{service_name}} span metrics"),
    ], unit="reqps",
        desc="Both lines per service should agree: the middleware's histogram and the "
             "collector's span metrics count the same requests."), 24, 8)
    L.add(timeseries("Server / consumer span rate by service", [prom(
        rate_of(SPANS, SERVER_OR_CONSUMER, "service_name"), "{{service_name}}")],
        unit="ops"), 12, 8)
    L.add(timeseries("Span p95 by service and kind", [prom(
        "histogram_quantile(0.95, sum by (le, service_name, span_kind) "
        f"(rate({SPAN_DUR}[{RI}])))", "{{service_name}} {{span_kind}}")],
        unit="s"), 12, 8)
    L.add(timeseries("Spans per second by kind", [prom(
        f"sum by (service_name, span_kind) (rate({SPANS}[{RI}]))",
        "{{service_name}} {{span_kind}}")], unit="ops", stack=True), 12, 8)
    L.add(timeseries("Log lines per second by service", [loki(
        'sum by (service_name) (rate({service_name=~"$auto_services|$manual_services"} '
        '[$__auto]))', "{{service_name}}")], unit="short", ds=LOKI), 12, 8)

    return dashboard(
        "otel-demo-auto-vs-manual", "OpenTelemetry demo / Auto vs manual instrumentation",
        "The same RED view for auto-instrumented and hand-instrumented services.", L,
        tags=["instrumentation"],
        variables=[constant_var("auto_services", "api-gateway|service-a|service-d"),
                   constant_var("manual_http", "service-b"),
                   constant_var("manual_services", "service-b|service-c")])


def collector() -> dict:
    job = 'job=~"$collector_job"'
    L = Layout()
    L.add(data_delay(DELAY_COLLECTOR), 24, 4)

    def pair(title: str, metrics: list[tuple[str, str]], by: str, desc: str = "",
             w: int = 8) -> None:
        # The collector creates a failure counter on the first failure only; `or <ok> * 0`
        # draws a zero line per receiver/exporter until then instead of "No data".
        ok = rate_of(metrics[0][0], job, by)

        def expr(m: str) -> str:
            return rate_of(m, job, by) if m == metrics[0][0] else f"{rate_of(m, job, by)} or {ok} * 0"
        L.add(timeseries(title, [prom(expr(m), legend) for m, legend in metrics],
                         unit="ops", desc=desc), w, 8)

    L.row("Throughput")
    for signal, unit_name in (("spans", "Spans"), ("metric_points", "Metric points"),
                              ("log_records", "Log records")):
        L.add(stat(f"{unit_name} accepted / s", [prom(
            f"sum(rate(otelcol_receiver_accepted_{signal}_total{{{job}}}[{RI}]))")],
            unit="ops", decimals=1), 6, 4)
    L.add(stat("Refused or failed (range)", [
        prom(f"sum(increase(otelcol_receiver_refused_spans_total{{{job}}}[$__range])) or vector(0)",
             "refused spans"),
        prom(f"sum(increase(otelcol_exporter_send_failed_spans_total{{{job}}}[$__range])) or vector(0)",
             "send-failed spans"),
        prom(f"sum(increase(otelcol_exporter_send_failed_log_records_total{{{job}}}[$__range])) or vector(0)",
             "send-failed log records"),
    ], decimals=0, thresholds=red_above(1), graph=False), 6, 4)

    # Counted inside the services: what never reached the collector, so its own metrics
    # above cannot show it (pushed over OTLP: an outage's points arrive once it is back).
    L.row("Before the collector: what the services could not send")
    L.add(timeseries("Dropped by the services: exports that failed, stdout lines over the buffer", [
        prom(f"sum by (service_name, signal) (increase(telemetry_export_dropped_total[{RI}]))",
             "{{service_name}} {{signal}} (export failed)"),
        prom(f"sum by (service_name) (increase(telemetry_stdout_dropped_lines_total[{RI}]))",
             "{{service_name}} stdout lines"),
    ], desc="Spans and log records a service could not deliver while the collector was down "
            "or refusing (telemetry.export.dropped, by signal), and JSON log lines dropped when "
            "stdout could not keep up (telemetry.stdout.dropped_lines)."), 24, 8)

    for signal, label, with_sampling in (("spans", "Traces", True),
                                         ("metric_points", "Metrics", False)):
        L.row(f"{label} pipeline")
        w = 8 if with_sampling else 12
        pair(f"Receivers: accepted / refused / failed {signal}", [
            (f"otelcol_receiver_accepted_{signal}_total", "{{receiver}} accepted"),
            (f"otelcol_receiver_refused_{signal}_total", "{{receiver}} refused"),
            (f"otelcol_receiver_failed_{signal}_total", "{{receiver}} failed"),
        ], "receiver", w=w,
            desc="refused: the pipeline pushed back (memory limiter); failed: "
                 "the receiver could not decode or process the data.")
        pair(f"Exporters: sent / failed {signal}", [
            (f"otelcol_exporter_sent_{signal}_total", "{{exporter}} sent"),
            (f"otelcol_exporter_send_failed_{signal}_total", "{{exporter}} send failed"),
            (f"otelcol_exporter_enqueue_failed_{signal}_total", "{{exporter}} queue full"),
        ], "exporter", w=w)
        if with_sampling:
            L.add(timeseries("Tail sampling decisions", [prom(
                "sum by (policy, sampled) "
                f"(rate(otelcol_processor_tail_sampling_count_traces_sampled_total{{{job}}}"
                f"[{RI}]))", "{{policy}} sampled={{sampled}}")], unit="ops",
                desc="Per policy: errors, slow traces, exemplar traces, probabilistic rest."),
                  8, 8)

    L.row("Processors, queues and the process")
    L.add(timeseries("Items dropped inside processors (incoming − outgoing)", [prom(
        f"sum by (processor) (rate(otelcol_processor_incoming_items_total{{{job}}}[{RI}])) - "
        f"sum by (processor) (rate(otelcol_processor_outgoing_items_total{{{job}}}[{RI}]))",
        "{{processor}}")], unit="ops", min0=False,
        desc="Since collector 0.110 processors report incoming/outgoing items instead of "
             "dropped/refused counters. Tail sampling drops by design; memory_limiter "
             "refusals show here too."), 12, 8)
    L.add(timeseries("Exporter queue size vs capacity", [
        prom(f"max by (exporter, data_type) (otelcol_exporter_queue_size{{{job}}})",
             "{{exporter}} {{data_type}} size"),
        prom(f"max by (exporter, data_type) (otelcol_exporter_queue_capacity{{{job}}})",
             "{{exporter}} {{data_type}} capacity"),
    ], unit="short"), 12, 8)
    L.add(timeseries("Collector memory (RSS)", [prom(
        f"max by (instance) (otelcol_process_memory_rss_bytes{{{job}}})", "{{instance}}")],
        unit="bytes"), 12, 7)
    L.add(timeseries("Collector CPU", [prom(
        f"sum by (instance) (rate(otelcol_process_cpu_seconds_total{{{job}}}[{RI}]))",
        "{{instance}}")], unit="percentunit"), 12, 7)

    L.row("Logs pipeline", collapsed=True)
    pair("Receivers: accepted / refused / failed log records", [
        ("otelcol_receiver_accepted_log_records_total", "{{receiver}} accepted"),
        ("otelcol_receiver_refused_log_records_total", "{{receiver}} refused"),
        ("otelcol_receiver_failed_log_records_total", "{{receiver}} failed"),
    ], "receiver", w=12)
    pair("Exporters: sent / failed log records", [
        ("otelcol_exporter_sent_log_records_total", "{{exporter}} sent"),
        ("otelcol_exporter_send_failed_log_records_total", "{{exporter}} send failed"),
        ("otelcol_exporter_enqueue_failed_log_records_total", "{{exporter}} queue full"),
    ], "exporter", w=12)

    return dashboard("otel-demo-collector", "OpenTelemetry demo / Collector health",
                     "The collector's own metrics: accepted, refused, dropped, sent, failed, "
                     "queues, per signal.", L, tags=["collector"],
                     variables=[textbox_var("collector_job", "Collector scrape job",
                                            "otel-collector")])


def k6() -> dict:
    # k6's `opentelemetry` output, through the collector: counters gain _total, a Rate metric
    # becomes a counter <name>_total split by condition="zero"/"nonzero", and a Trend becomes a
    # histogram in milliseconds (unit "ms" -> _milliseconds).
    dur = "k6_http_req_duration_milliseconds_bucket"

    # With no failure at all there is no condition="nonzero" series: count it as 0.
    def failed_ratio(window: str) -> str:
        return (f'(sum(increase(k6_http_req_failed_total{{condition="nonzero"}}[{window}]))'
                " or vector(0))"
                f" / sum(increase(k6_http_req_failed_total[{window}]))")

    def checks_ratio(window: str, by: str = "") -> str:
        grp = f" by ({by})" if by else ""
        return (f'sum{grp} (increase(k6_checks_total{{condition="nonzero"}}[{window}]))'
                f" / sum{grp} (increase(k6_checks_total[{window}]))")

    def quantile(q: float, window: str, by: str = "") -> str:
        keep = f"{by}, le" if by else "le"
        return f"histogram_quantile({q}, sum by ({keep}) (rate({dur}[{window}])))"

    L = Layout()
    L.add(data_delay(DELAY_K6, DELAY_HTTP), 24, 5)
    L.row("Run summary")
    L.add(stat("Requests", [prom("sum(increase(k6_http_reqs_total[$__range]))")], decimals=0,
               graph=False), 4, 4)
    L.add(stat("Failed requests", [prom(failed_ratio("$__range"))], unit="percentunit",
               decimals=2, thresholds=red_above(0.05, 0.01)), 4, 4)
    L.add(stat("p95", [prom(quantile(0.95, "$__range"))], unit="ms", decimals=1), 4, 4)
    L.add(stat("p99", [prom(quantile(0.99, "$__range"))], unit="ms", decimals=1), 4, 4)
    L.add(stat("Checks passing", [prom(checks_ratio("$__range"))], unit="percentunit",
               decimals=2, thresholds={"mode": "absolute", "steps": [
                   {"color": "red", "value": None}, {"color": "orange", "value": 0.95},
                   {"color": "green", "value": 0.99}]}), 4, 4)
    L.add(stat("Virtual users", [prom("sum(k6_vus)")], decimals=0), 4, 4)

    L.row("Load and latency")
    L.add(timeseries("Virtual users", [prom("sum(k6_vus)", "VUs"),
                                       prom("sum(k6_vus_max)", "max VUs")], unit="short"),
          8, 8)
    L.add(timeseries("Requests / s by status", [prom(
        f"sum by (status) (rate(k6_http_reqs_total[{RI}]))", "{{status}}")], unit="reqps",
        stack=True), 8, 8)
    L.add(timeseries("Iterations / s", [prom(f"sum(rate(k6_iterations_total[{RI}]))",
                                             "iterations")], unit="ops"), 8, 8)
    L.add(timeseries("Request duration p95 / p99 by request name", [
        prom(quantile(0.95, RI, "name"), "{{name}} p95"),
        prom(quantile(0.99, RI, "name"), "{{name}} p99"),
    ], unit="ms", desc="Quantiles of k6's http_req_duration histogram (client side)."), 12, 8)
    L.add(timeseries("Client view vs gateway view (p95)", [
        prom(f"{quantile(0.95, RI)} / 1000", "k6 p95 (client)"),
        prom("histogram_quantile(0.95, sum by (le) "
             f'(rate({HTTP_SERVER}_bucket{{job="api-gateway"}}[{RI}])))',
             "api-gateway p95 (server)", exemplar=True),
    ], unit="s", desc="The gap is network, queueing and k6 itself."), 12, 8)
    L.add(timeseries("Failed request ratio", [prom(failed_ratio(RI), "failed")],
                     unit="percentunit"), 12, 8)
    L.add(timeseries("Checks pass ratio by check", [prom(checks_ratio(RI, "check"),
                                                         "{{check}}")],
                     unit="percentunit"), 12, 8)

    return dashboard("otel-demo-k6", "OpenTelemetry demo / k6 load test",
                     "k6 results sent over OTLP (the opentelemetry output) through the "
                     "collector.", L, tags=["k6", "load"])


# The SLOs of observability/rules/slo.rules.yml (scripts/observability/gen_rules.py), by the
# `slo` label of its recording rules.
SLO_NAMES = ("gateway-availability", "gateway-latency", "order-freshness")
BUDGET = "(1 - max by (slo) (slo:objective:ratio))"


def slo() -> dict:
    L = Layout()
    L.add(data_delay(DELAY_SLO, DELAY_HTTP, DELAY_OTLP), 24, 6)
    L.row("Error budget and alerts")
    L.add(stat("Error budget left over the time range", [prom(
        "1 - (sum by (slo) (sum_over_time(slo:errors:rate5m[$__range]))"
        " / sum by (slo) (sum_over_time(slo:events:rate5m[$__range])))"
        f" / on (slo) {BUDGET}", "{{slo}}")], unit="percentunit", decimals=1,
        thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                  {"color": "orange", "value": 0},
                                                  {"color": "green", "value": 0.5}]},
        desc="1 - (bad events / all events over the range) / the budget (1 - objective). "
             "Below 0: the range used more than its budget.", graph=False), 12, 5)
    L.add(stat("Alerts firing now", [prom(
        'count(ALERTS{alertstate="firing"}) or vector(0)', "firing")], decimals=0,
        thresholds=red_above(1), graph=False,
        desc="Every alert of observability/rules; Alertmanager groups, inhibits and sends "
             "them (Explore > Alertmanager, or the alert-webhook log in compose)."), 12, 5)
    L.add(state_timeline("Alert state", [prom(
        'max by (alertname) (ALERTS{alertstate="firing"}) or on () vector(0)', "{{alertname}}")],
        mappings=[{"type": "value", "options": {
            "0": {"text": "none firing", "color": "green", "index": 0},
            "1": {"text": "firing", "color": "red", "index": 1}}}],
        desc="Which alerts fired when (the burn-rate alerts of each SLO, the pipeline and "
             "dependency alerts)."), 24, 6)
    for name in SLO_NAMES:
        one = f'slo="{name}"'
        L.row(f"SLO {name}")
        L.add(timeseries("Burn rate by window", [
            prom(f"max by (slo) (slo:error_ratio:rate{w}{{{one}}}) / on (slo) {BUDGET}", w)
            for w in ("5m", "1h", "6h", "1d")], unit="short",
            desc="Error ratio over the window / the budget. The fast alert pages when 1h and "
                 "5m are both above 14.4 (or 6h and 30m above 6); the slow one opens a "
                 "ticket at 3 (1d and 2h) or 1 (3d and 6h)."), 16, 7)
        L.add(timeseries("Good events (SLI, 5m)", [prom(
            f"1 - max by (slo) (slo:error_ratio:rate5m{{{one}}})", "SLI"),
            prom(f"max by (slo) (slo:objective:ratio{{{one}}})", "objective")],
            unit="percentunit", min0=False), 8, 7)
    return dashboard("otel-demo-slo", "OpenTelemetry demo / SLOs and alerts",
                     "Error budgets, burn rates per window and alert state of the three SLOs "
                     "(observability/rules).", L, tags=["slo", "alerts"], time_from="now-1h")


DASHBOARDS = {
    "overview.json": overview,
    "order-pipeline.json": orders,
    "resilience.json": resilience,
    "auto-vs-manual.json": auto_vs_manual,
    "collector-health.json": collector,
    "k6.json": k6,
    "slo.json": slo,
}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a file differs from what this script makes")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        text = render(build)
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("dashboards differ from scripts/grafana/gen_dashboards.py (run it and commit):",
              *stale, sep="\n  ", file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(DASHBOARDS)} dashboards match scripts/grafana/gen_dashboards.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
