#!/usr/bin/env python3
"""Turns scripts/bench.sh's result lines into the "What telemetry costs" section of
docs/BENCHMARKS.md: the text between the BEGIN and END markers is replaced, everything
else in the file stays. Standard library only."""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess

BEGIN = "<!-- scripts/bench.sh: begin (generated; edit scripts/bench/report.py) -->"
END = "<!-- scripts/bench.sh: end -->"
MODES = [
    ("off", "off: `OTEL_SDK_DISABLED=true`, `RUST_LOG=off`"),
    ("logs", "JSON logs only: `OTEL_SDK_DISABLED=true`"),
    ("full", "full, 100% sampled, to the collector"),
    ("head10", "head sampling 10%"),
    ("dead", "full, collector down"),
]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))} to {fmt.format(max(values))})"


def ratio(value, base):
    if value is None or not base:
        return "n/a"
    return f"{value / base:.2f}"


def service_cpu_per_1000(r):
    done = r["ok"] + r["errors"]
    return sum(r["cpu_ms"].values()) * 1000 / done if done else None


def rss_mb(r):
    return sum(v for v in r["rss_kb"].values() if v) / 1024


def loads(rows):
    one = [float(r["loadavg"].split()[0]) for r in rows if r.get("loadavg")]
    return f"{min(one):.1f} to {max(one):.1f}" if one else "n/a"


def command(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB, Linux {platform.release()}"


def matrix(rows, out, args):
    out.append("### 1. The overhead matrix\n")
    out.append(
        "Each cell: the median of the rounds, the spread (lowest to highest) in brackets, and the "
        "ratio to *off* of the median. CPU is the six services' user+system time (from "
        "`/proc/<pid>/stat`) per 1,000 requests, i.e. microseconds per request; RSS is the six "
        "services' resident sets summed at the end of the run. Postgres, Kafka, the collector and "
        "the driver are not in it.\n"
    )
    cells = [
        ("products", "saturation", "`GET /api/products`, saturation (16 connections, closed loop)"),
        ("products", "rate", f"`GET /api/products` at {args.products_rate} requests/s (open loop)"),
        ("orders", "saturation", "`POST /api/orders`, saturation (16 connections, closed loop)"),
        ("orders", "rate", f"`POST /api/orders` at {args.orders_rate} requests/s (open loop)"),
    ]
    per_hop = {}
    for path, load, title in cells:
        sel = [r for r in rows if r.get("section") == "matrix" and r["path"] == path and r["load"] == load]
        if not sel:
            continue
        out.append(f"**{title}**\n")
        out.append("| mode | req/s | ratio | p50 ms | ratio | p99 ms | ratio | CPU µs/req | ratio | RSS MiB | ratio | errors | load avg |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        base = {}
        for mode, label in MODES:
            m = [r for r in sel if r["mode"] == mode]
            if not m:
                continue
            figures = {
                "rps": [r["rps"] for r in m],
                "p50": [r["p50_ms"] for r in m],
                "p99": [r["p99_ms"] for r in m],
                "cpu": [service_cpu_per_1000(r) for r in m],
                "rss": [rss_mb(r) for r in m],
            }
            if mode == "off":
                base = {k: med(v) for k, v in figures.items()}
            if load == "saturation" and mode in ("off", "full"):
                per_hop[(path, mode)] = med(figures["cpu"])
            out.append(
                f"| {label} | {spread(figures['rps'], '{:.0f}')} | {ratio(med(figures['rps']), base.get('rps'))} "
                f"| {spread(figures['p50'], '{:.2f}')} | {ratio(med(figures['p50']), base.get('p50'))} "
                f"| {spread(figures['p99'], '{:.2f}')} | {ratio(med(figures['p99']), base.get('p99'))} "
                f"| {spread(figures['cpu'], '{:.0f}')} | {ratio(med(figures['cpu']), base.get('cpu'))} "
                f"| {spread(figures['rss'], '{:.0f}')} | {ratio(med(figures['rss']), base.get('rss'))} "
                f"| {sum(r['errors'] for r in m)} | {loads(m)} |"
            )
        out.append("")
    if ("products", "full") in per_hop and ("products", "off") in per_hop:
        extra = per_hop[("products", "full")] - per_hop[("products", "off")]
        out.append(
            f"Telemetry's CPU on the read path at saturation: {extra:.0f} µs per request more than *off*, "
            f"over two service hops (the gateway and service-d): **{extra / 2:.1f} µs per hop** "
            "(spans, access logs, metrics and their export).\n"
        )


def hop(rows, out, args):
    sel = [r for r in rows if r.get("section") == "hop"]
    if not sel:
        return
    out.append("### 2. The gateway hop\n")
    out.append(
        f"Full telemetry, open loop at {args.hop_rate} requests/s (`GET`) and {args.orders_rate}/s "
        "(`POST`), gateway and direct runs alternating; medians of the rounds.\n"
    )
    out.append("| request | via gateway p50 / p99 ms | direct p50 / p99 ms | the hop adds p50 / p99 ms |")
    out.append("|---|---|---|---|")
    for path, direct in (("products", "`GET :8084/products`"), ("orders", "`POST :8081/orders`")):
        g = [r for r in sel if r["path"] == path and r["via"] == "gateway"]
        d = [r for r in sel if r["path"] == path and r["via"] == "direct"]
        if not g or not d:
            continue
        g50, g99 = med([r["p50_ms"] for r in g]), med([r["p99_ms"] for r in g])
        d50, d99 = med([r["p50_ms"] for r in d]), med([r["p99_ms"] for r in d])
        out.append(f"| {direct} | {g50:.2f} / {g99:.2f} | {d50:.2f} / {d99:.2f} | {g50 - d50:.2f} / {g99 - d99:.2f} |")
    out.append("")


def criterion(path, out):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return
    found = re.findall(r"^(\S+/\S+)\s+time:\s+\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", text, re.M)
    if not found:
        return
    out.append("### 3. Server span (criterion, same run)\n")
    out.append("`cargo bench --workspace --all-features --bench server_layer`, after the stack was stopped; mean and 95% interval.\n")
    out.append("| benchmark | time per iteration |")
    out.append("|---|---|")
    for name, low, mid, high in found:
        out.append(f"| `{name}` | {mid} ({low} to {high}) |")
    out.append("")


def footprint(rows, out):
    idle = [r for r in rows if r.get("section") == "idle" and r.get("mode") == "full"]
    load = [r for r in rows if r.get("section") == "matrix" and r.get("mode") == "full" and r["load"] == "saturation"]
    binaries = [r for r in rows if r.get("section") == "binaries"]
    if not idle and not binaries:
        return
    out.append("### 4. Footprint\n")
    out.append(
        "Full telemetry. Idle: right after start and one request of each kind; under load: the "
        "highest resident set at the end of a saturation run. No image size: Docker does not run here.\n"
    )
    out.append("| service | RSS idle MiB | RSS under load MiB | release binary MiB |")
    out.append("|---|---|---|---|")
    sizes = binaries[0]["bytes"] if binaries else {}
    names = list(idle[0]["rss_kb"]) if idle else list(sizes)
    for name in names:
        i = med([r["rss_kb"].get(name) for r in idle])
        l = max((r["rss_kb"].get(name) or 0 for r in load), default=0)
        size = sizes.get(name)
        out.append(
            f"| {name} | {i / 1024:.1f} | {l / 1024:.1f} | {size / 1048576:.1f} |"
            if i and size
            else f"| {name} | {(i or 0) / 1024:.1f} | {l / 1024:.1f} | n/a |"
        )
    for name, size in sizes.items():
        if name not in names:
            out.append(f"| {name} | | | {size / 1048576:.1f} |")
    out.append("")


def freshness(rows, out):
    sel = [r for r in rows if r.get("section") == "freshness"]
    if not sel:
        return
    out.append("### 5. Trace freshness\n")
    out.append(
        "`GET /api/products` with a sampled `traceparent` of its own, one request every 150 ms; the "
        "services export straight to an OTLP receiver in the driver (where the collector's receiver "
        "would be), which notes when each span arrives. The lag runs from the response to the last "
        "span of that trace. Behind the collector, the tail sampler's `decision_wait` (10 s) comes on top "
        "before Tempo has the trace.\n"
    )
    out.append("| batch span processor | traces | spans per trace | p50 ms | p99 ms | max ms |")
    out.append("|---|---|---|---|---|---|")
    labels = {
        "fresh-default": "SDK default (`OTEL_BSP_SCHEDULE_DELAY` 5000 ms)",
        "fresh-demo": "the demo's `OTEL_BSP_SCHEDULE_DELAY=200` (docker-compose.yml)",
    }
    for r in sel:
        out.append(
            f"| {labels.get(r['mode'], r['mode'])} | {r['traces_seen']}/{r['requests']} | {r['spans_per_trace_median']} "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |"
        )
    out.append("")


def collector(rows, out):
    sel = [r for r in rows if r.get("section") == "collector"]
    if not sel:
        return
    out.append("### 6. Collector capacity on the project's pipeline\n")
    out.append(
        "The collector as `dev-stack.sh --observability` runs it (observability/otel-collector.yaml: "
        "memory limiter, redaction, span metrics, tail sampling, batch; otlp-sink in Tempo's place), "
        "the services stopped, fed OTLP/HTTP by `bench-driver otlp` (200 spans per request, "
        "traces of four spans). Refused: requests the receiver answered with an error; the collector's "
        "own counters (`:8888/metrics`) that moved are listed.\n"
    )
    out.append("| offered spans/s | accepted spans/s | refused spans | collector cores | spans per CPU second | collector RSS MiB | counters that moved | load avg |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in sel:
        counters = ", ".join(
            f"{k.replace('otelcol_', '')} {v:.0f}"
            for k, v in sorted(r.get("collector_counters", {}).items())
            if "accepted" not in k
        )
        rss = next(iter(r["rss_kb"].values()), None) or 0
        out.append(
            f"| {r['target_spans_per_s']:.0f} | {r['accepted_spans_per_s']:.0f} | {r['refused_spans']} "
            f"| {r['cores_used']:.2f} | {r['spans_per_cpu_second']:.0f} | {rss / 1024:.0f} | {counters or 'none'} | {r['loadavg']} |"
        )
    out.append("")


# Command names (as /proc truncates them) of the stack's processes.
STACK = ("api-gateway", "service-", "third-party", "otelcol", "postgres", "java", "prometheus",
         "alertmanager", "otlp-sink", "alert-webhook", "bench-driver")


def capacity(rows, out):
    sel = [r for r in rows if r.get("section") == "capacity"]
    cpus = {r["rate"]: r for r in rows if r.get("section") == "capacity-cpu"}
    if not sel:
        return
    out.append("### 7. The whole stack's capacity\n")
    out.append(
        "`POST /api/orders` through the gateway, full telemetry, open loop, rising rates until p99 "
        "reaches 100 ms or a request fails. CPU: every process on the machine during the step, by "
        "command name (`scripts/bench/proc_cpu.py`).\n"
    )
    out.append("| offered req/s | achieved req/s | p50 ms | p99 ms | errors | top CPU (seconds in the step) | load avg |")
    out.append("|---|---|---|---|---|---|---|")
    best = None
    for r in sel:
        ok = r["errors"] == 0 and r["p99_ms"] < 100
        if ok:
            best = r
        used = cpus.get(r["rate"], {}).get("cpu_seconds", [])
        mine = [(c, s) for c, s in used if c.startswith(STACK)]
        others = sum(s for c, s in used if not c.startswith(STACK))
        top = ", ".join(f"{c} {s:.1f}" for c, s in mine[:3]) + f"; other work on the machine {others:.1f}"
        out.append(
            f"| {r['rate']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {top} | {r['loadavg']} |"
        )
    out.append("")
    if best:
        out.append(f"Highest steady rate with p99 under 100 ms and no errors: **{best['rate']} orders/s**.\n")


def main():
    p = argparse.ArgumentParser()
    for flag in ("results", "criterion", "out", "quick", "profile", "rounds", "seconds", "products-rate", "orders-rate", "hop-rate"):
        p.add_argument(f"--{flag}", required=True)
    args = p.parse_args()
    with open(args.results) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out = [BEGIN, "## What telemetry costs: the stack under load (`scripts/bench.sh`)\n"]
    out.append(
        f"Generated by `scripts/bench.sh` on {datetime.date.today()}: {machine()}; "
        f"{command('rustc', '--version')}; the `{args.profile}` profile; OpenTelemetry Collector 0.161.0 "
        "built from tools/otelcol; Postgres and Kafka from scripts/infra.sh. Load: "
        "`crates/bench-driver` (a purpose-built driver on reqwest and Tokio, in this repository): "
        f"{args.rounds} rounds, {args.seconds} s measured per cell after a warm-up, modes alternating "
        "within each round and every service restarted with the mode's environment. The driver, the "
        "services, Postgres, Kafka and the collector share the machine's cores, so absolute figures are "
        "this machine's; the ratios are side by side. The load average (1-minute) is given with each "
        "figure: other work on the machine shows there.\n"
    )
    if args.quick == "1":
        out.append("**Quick run (`--quick`): debug build, seconds per cell; the figures mean nothing.**\n")
    matrix(rows, out, args)
    hop(rows, out, args)
    criterion(args.criterion, out)
    footprint(rows, out)
    freshness(rows, out)
    collector(rows, out)
    capacity(rows, out)
    out.append(END)
    section = "\n".join(out) + "\n"
    try:
        with open(args.out) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmarks\n"
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + section + doc[doc.index(END) + len(END) + 1 :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    with open(args.out, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
