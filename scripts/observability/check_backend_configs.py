#!/usr/bin/env python3
r"""Static checks of observability/loki.yaml and observability/tempo.yaml as the compose containers
load them (Loki and Tempo are AGPL: nothing here fetches, builds or runs them).

What it proves, per file:
* expansion: both run with -config.expand-env=true: drone/envsubst v1.0.3 rewrites the WHOLE file,
  comments included, with the variables compose sets for the service. Only ${VAR} and
  ${VAR:-default} pass (the default also applies to a set but empty VAR); a reference without
  default that compose does not set fails, so does any other `$` (envsubst leaves `$VAR` as is,
  refuses `${VAR-x}`, takes `${VAR:?x}` as a default) and `\\` or `\/` (it turns them into `\`
  and `/`); `$$` is its escape for `$`. The result must parse as YAML, without duplicate keys.
* known keys: top-level keys, and those of the nested blocks in KNOWN, are ones Loki 3.7.6 /
  Tempo 3.0.3 accept; what Tempo 3 removed (ingester, compactor, local-blocks) fails by name.
* the known traps of Loki 3 and Tempo 3 configs, and agreement with docker-compose.yml and
  observability/otel-collector.yaml (hosts, ports, paths, networks, volumes, flags, healthchecks);
* one writer per span-derived metric name (Tempo's generator does not write the collector's
  service graph), and no exemplars picked before the collector's tail sampler.
It is not Loki's or Tempo's own validation: keys below the blocks in KNOWN (say under
storage_config or query_range), value types and other cross-field rules are not checked, nor are
native values (the native stack runs an OTLP sink in place of both). The self-test breaks copies
of the files and requires each to FAIL the check it targets.

    python3 scripts/observability/check_backend_configs.py [--root REPO] [--self-test]

No arguments: the real files, then the self-test. Exit 1 on any FAIL. Python 3.11, PyYAML 6.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

LOKI, TEMPO = "observability/loki.yaml", "observability/tempo.yaml"
COLLECTOR, COMPOSE = "observability/otel-collector.yaml", "docker-compose.yml"
SERVICE_GRAPH = "observability/otel-collector.service-graph.yaml"  # compose layers it on COLLECTOR
# Top level: yaml tags of `Config` in pkg/loki/loki.go at grafana/loki v3.7.6 (hidden ones too),
# cross-checked with docs/sources/shared/configuration.md at that tag.
LOKI_TOP = set("""target auth_enabled http_prefix ballast_bytes server internal_server ui
distributor querier query_engine query_scheduler frontend query_range ruler ruler_storage
ingester_client ingester pattern_ingester index_gateway bloom_build bloom_gateway storage_config
chunk_store_config schema_config compactor compactor_client compactor_grpc_client limits_config
frontend_worker table_manager memberlist kafka_config dataobj ingest_limits ingest_limits_frontend
ingest_limits_frontend_client runtime_config operational_config tracing analytics profiling
tenant_limits_allow_publish legacy_read_target common shutdown_delay metrics_namespace""".split())
# Top level: yaml tags of `Config` in cmd/tempo/app/config.go at grafana/tempo v3.0.3,
# cross-checked with docs/sources/tempo/configuration/manifest.md at that tag.
TEMPO_TOP = set("""target auth_enabled multitenancy_enabled shutdown_delay stream_over_http_enabled
http_api_prefix enable_go_runtime_metrics span_profiling memory server internal_server distributor
metrics_generator_client live_store_client querier query_frontend metrics_generator ingest
block_builder storage overrides memberlist usage_report cache backend_scheduler
backend_scheduler_client backend_worker live_store""".split())
# Removed in Tempo 3.0 (its CHANGELOG.md: #6504 #6959 #6273 #6555 #6507 #7048); strict YAML
# unmarshalling refuses them, so startup fails.
TEMPO_REMOVED = {
    "ingester": "Tempo 3.0 removed the ingester (the live store replaced it): startup fails",
    "ingester_client": "Tempo 3.0 removed the ingester and its client: startup fails",
    "compactor": "Tempo 3.0 removed the compactor (backend scheduler/worker): startup fails",
    "metrics_generator.processor.local_blocks": "Tempo 3.0 removed the local-blocks processor: "
    "startup fails",
    "query_frontend.search.query_ingesters_until": "removed in Tempo 3.0: use query_backend_after",
    "querier.query_live_store": "removed in Tempo 3.0: startup fails",
}
# Nested blocks the demo relies on -> the keys their upstream structs accept ("*": list items).
# Loki v3.7.6: pkg/storage/config/schema_config.go, pkg/loghttp/push/otlp_config.go. Tempo v3.0.3:
# modules/overrides/config.go, modules/generator/config.go, modules/distributor/receiver/shim.go.
KNOWN = {"loki": {
    "schema_config": "configs",
    "schema_config.configs.*": "from store object_store schema index chunks row_shards",
    "schema_config.configs.*.index": "path_prefix prefix period tags",
    "limits_config.otlp_config": "resource_attributes scope_attributes log_attributes "
                                 "severity_text_as_label",
    "limits_config.otlp_config.resource_attributes": "ignore_defaults attributes_config",
    "limits_config.otlp_config.resource_attributes.attributes_config.*": "action attributes regex",
}, "tempo": {  # other keys under overrides: the legacy flat format, refused by Tempo 3.0
    "overrides": "defaults per_tenant_override_config per_tenant_override_period "
                 "user_configurable_overrides enable_legacy_overrides",
    "overrides.defaults": "ingestion read compaction metrics_generator forwarders global storage "
                          "cost_attribution",
    "metrics_generator.processor": "service_graphs span_metrics host_info",
    "distributor.receivers": "otlp jaeger zipkin kafka",
}}
HINTS = {"overrides": "; Tempo 3.0 refuses legacy flat overrides: use overrides.defaults.<group>"}
# distributor.otlp_config default: pkg/loghttp/push/otlp_config.go at Loki v3.7.6.
LOKI_DEFAULT_INDEX_LABELS = """service.name service.namespace service.instance.id
deployment.environment deployment.environment.name cloud.region cloud.availability_zone
k8s.cluster.name k8s.namespace.name k8s.pod.name k8s.container.name container.name
k8s.replicaset.name k8s.deployment.name k8s.statefulset.name k8s.daemonset.name k8s.cronjob.name
k8s.job.name""".split()
# modules/generator/validation/fields.go at Tempo v3.0.3 (overrides validation refuses others).
TEMPO_PROCESSORS = set("""service-graphs span-metrics span-metrics-count span-metrics-latency
span-metrics-size host-info""".split())
ALL_INTERFACES = {"", "0.0.0.0", "::", "[::]"}
BACKENDS = {  # compose service -> config file, data-dir variable, healthcheck binary
    "loki": {"file": LOKI, "data_var": "LOKI_DATA_DIR", "exe": "/usr/bin/loki"},
    "tempo": {"file": TEMPO, "data_var": "TEMPO_DATA_DIR", "exe": "/tempo"},
}


def dig(data, dotted, default=None):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def walk(data, parts, where=""):
    """(dotted path, value) for each match of PARTS, "*" stepping into every list item."""
    if not parts:
        yield where, data
    elif parts[0] == "*" and isinstance(data, list):
        for i, item in enumerate(data):
            yield from walk(item, parts[1:], f"{where}[{i}]")
    elif isinstance(data, dict) and parts[0] in data:
        yield from walk(data[parts[0]], parts[1:], f"{where}.{parts[0]}".lstrip("."))


SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class StrictLoader(SafeLoader):
    """Refuses duplicate keys, as Go's yaml.UnmarshalStrict does (PyYAML keeps the last one)."""


def _strict_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def envsubst(raw: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """drone/envsubst v1.0.3 over the whole text, reporting what this project does not allow."""
    problems: list[str] = []

    def sub(m: re.Match) -> str:
        tok, line = m.group(0), raw.count("\n", 0, m.start()) + 1
        at = f"line {line} col {m.start() - raw.rfind(chr(10), 0, m.start())}"
        if tok in ("\\\\", "\\/"):
            problems.append(f"{at}: envsubst rewrites {tok} to {tok[1]}, comments included")
        if tok in ("$$", "\\\\", "\\/"):
            return tok[1]
        ref = re.fullmatch(r"\$\{([A-Za-z_]\w*)(?::-([^$]*))?\}", tok)
        if tok == "$":
            near = raw[m.start():m.start() + 12].split("\n")[0]
            problems.append(f"{at}: stray '$' ({near!r}) is not a reference (envsubst leaves it, "
                            "a $VAR unexpanded): write ${VAR:-default}, or $$ for a literal '$'")
        elif not ref:
            problems.append(f"{at}: {tok!r}: write ${{VAR}} or ${{VAR:-default}} (envsubst refuses "
                            "${VAR-x}, ${A.B} or a missing '}', and takes ${VAR:?x} as a default)")
        elif env.get(ref[1]):
            return env[ref[1]]
        elif ref[2] is not None:
            return ref[2]
        elif ref[1] not in env:
            problems.append(f"{at}: ${{{ref[1]}}} has no default and compose does not set "
                            f"{ref[1]}: it expands to ''")
        return tok if not ref else ""

    return re.sub(r"\$\$|\\[\\/]|\$\{[^}\n]*\}?|\$", sub, raw), problems


def compose_env(svc: dict) -> dict[str, str]:
    """A service's environment after compose's own interpolation, with no host variables set."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    interp = re.compile(r"\$\$|\$\{\w+(?::?-([^}]*))?[^}]*\}|\$\w+")  # ${X:?e} -> ''
    return {k: interp.sub(lambda m: "$" if m[0] == "$$" else m[1] or "", str(v or ""))
            for k, v in env.items()}


def command_of(svc: dict) -> list[str]:
    command = svc.get("command") or []
    return command.split() if isinstance(command, str) else [str(a) for a in command]


class Ctx:
    """What the checks read: compose, the collector config, Loki and Tempo as compose loads them."""

    def __init__(self, root: Path):
        self.root = root
        self.compose = yaml.load((root / COMPOSE).read_text(), Loader=SafeLoader)
        self.services = self.compose.get("services") or {}
        col_env = compose_env(self.services.get("otel-collector", {}))
        self.collector = yaml.load(re.sub(
            r"\$\$|\$\{(?:env:)?(\w+)(?::-([^}]*))?\}",
            lambda m: "$" if m[0] == "$$" else col_env.get(m[1]) or m[2] or "",
            (root / COLLECTOR).read_text()), Loader=SafeLoader) or {}
        self.service_graph = yaml.load((root / SERVICE_GRAPH).read_text(),
                                       Loader=SafeLoader) or {}
        self.raw, self.text, self.data, self.load_problems = {}, {}, {}, {}
        for name, spec in BACKENDS.items():
            svc = self.services.get(name, {})
            self.raw[name] = (root / spec["file"]).read_text()
            self.text[name], problems = envsubst(self.raw[name], compose_env(svc))
            try:
                self.data[name] = yaml.load(self.text[name], Loader=StrictLoader)
                if not isinstance(self.data[name], dict):
                    raise yaml.YAMLError("the expanded file is not a YAML mapping")
            except yaml.YAMLError as err:
                mark, self.data[name] = getattr(err, "problem_mark", None), None
                where = f"line {mark.line + 1} col {mark.column + 1}: " if mark else ""
                problems.append(f"YAML after expansion: {where}{getattr(err, 'problem', err)}")
            self.load_problems[name] = problems


def check_expansion_and_yaml(ctx: Ctx, name: str):
    return ctx.load_problems[name], "only ${VAR}/${VAR:-default}, none unset; valid strict YAML"


def check_known_keys(ctx: Ctx, name: str):
    data, problems = ctx.data[name], []
    top, removed = (LOKI_TOP, {}) if name == "loki" else (TEMPO_TOP, TEMPO_REMOVED)
    problems += [f"{key}: {why}" for key, why in removed.items() if dig(data, key, KeyError)
                 is not KeyError]  # present, even if empty
    problems += [f"{k}: not a top-level key of {name}" for k in data if k not in top | set(removed)]
    for path, allowed in KNOWN[name].items():
        for where, block in walk(data, path.split(".")):
            problems += [f"{where}.{k}: unknown key (accepted: {allowed}){HINTS.get(path, '')}"
                         for k in (block if isinstance(block, dict) else {})
                         if k not in allowed.split() and f"{path}.{k}" not in removed]
    if "local-blocks" in (dig(data, "overrides.defaults.metrics_generator.processors") or []):
        problems.append("overrides.defaults.metrics_generator.processors: local-blocks: "
                        "Tempo 3.0 removed the local-blocks processor: startup fails")
    return problems, f"top level and {len(KNOWN[name])} nested blocks known to {name}"


def check_loki_schema(ctx: Ctx, _name: str):
    configs = dig(ctx.data["loki"], "schema_config.configs") or []
    if not isinstance(configs, list) or not configs:
        return ["schema_config.configs is empty: Loki refuses to start"], ""
    today, active = datetime.date.today().isoformat(), 0  # as config.ActivePeriodConfig picks it
    for i, period in enumerate(configs):
        active = i if str(period.get("from", "")) <= today else active
    period, problems = configs[active], []
    if not re.fullmatch(r"v(1[3-9]|[2-9]\d)", str(period.get("schema"))):
        problems.append(f"active schema is {period.get('schema')}: Loki 3 needs v13 for "
                        "structured metadata (OTLP) and refuses to start")
    if period.get("store") != "tsdb":
        problems.append(f"active store is {period.get('store')}: structured metadata needs tsdb")
    if str(dig(period, "index.period")) not in ("24h", "1440m", "86400s"):
        problems.append(f"index period is {dig(period, 'index.period')}: tsdb requires 24h")
    if dig(ctx.data["loki"], "limits_config.allow_structured_metadata") is False:
        problems.append("limits_config.allow_structured_metadata is false: OTLP logs lose trace_id")
    return problems, f"from {period.get('from')}: {period.get('schema')}, {period.get('store')}, " \
        "24h; structured metadata not disabled"


def check_listeners(ctx: Ctx, name: str):
    data, problems = ctx.data[name], []
    for key in ("http_listen_address", "grpc_listen_address"):
        if str(dig(data, f"server.{key}") or "") not in ALL_INTERFACES:
            problems.append(f"server.{key} is {dig(data, 'server.' + key)}: other containers "
                            "cannot reach it")
    for proto in ("grpc", "http") if name == "tempo" else ():
        endpoint = dig(data, f"distributor.receivers.otlp.protocols.{proto}.endpoint")
        if endpoint is None or str(endpoint).rpartition(":")[0] not in ALL_INTERFACES:
            problems.append(f"OTLP {proto} receiver binds {endpoint or 'localhost (the default)'}: "
                            "set 0.0.0.0:<port> or the collector cannot reach it")
    return problems, "all interfaces" + (", OTLP receivers too" if name == "tempo" else "")


def check_loki_otlp_rules(ctx: Ctx, _name: str):
    """Loki puts its default index-label rule first unless ignore_defaults; first match wins."""
    data = ctx.data["loki"]
    resource = dig(data, "limits_config.otlp_config.resource_attributes") or {}
    rules = resource.get("attributes_config") or []
    defaults = dig(data, "distributor.otlp_config.default_resource_attributes_as_index_labels",
                   LOKI_DEFAULT_INDEX_LABELS)
    effective = rules if resource.get("ignore_defaults") or not defaults else \
        [{"action": "index_label", "attributes": defaults}, *rules]

    def action(attr: str) -> str:
        for rule in effective:
            regex = rule.get("regex")
            if attr in (rule.get("attributes") or []) or (regex and re.fullmatch(regex, attr)):
                return rule.get("action") or "structured_metadata"
        return "structured_metadata"

    problems = []
    for i, rule in enumerate(rules):
        want = rule.get("action") or "structured_metadata"
        problems += [f"attributes_config[{i}] wants {attr} as {want}, but Loki makes it "
                     f"{action(attr)}: {attr} is in Loki's default index-label list, whose rule "
                     "goes first unless resource_attributes.ignore_defaults: true (first match "
                     "wins)" for attr in rule.get("attributes") or [] if action(attr) != want]
    if action("service.name") != "index_label":
        problems.append(f"service.name becomes {action('service.name')}, so no service_name "
                        "label for the queries: list it under an index_label rule")
    return problems, f"{len(rules)} rule(s) take effect; service.name stays the service_name label"


def check_tempo_streaming(ctx: Ctx, _name: str):
    if ctx.data["tempo"].get("stream_over_http_enabled") is not True:
        return ["stream_over_http_enabled is not true: Grafana's streaming search fails"], ""
    return [], "stream_over_http_enabled: true"


def check_tempo_generator(ctx: Ctx, _name: str):
    procs = dig(ctx.data["tempo"], "overrides.defaults.metrics_generator.processors") or []
    writes = dig(ctx.data["tempo"], "metrics_generator.storage.remote_write") or []
    problems = [f"overrides.defaults.metrics_generator.processors lacks {p}: processors are "
                "off unless enabled there" for p in ("span-metrics",) if p not in procs]
    # One writer per metric name: Grafana's service map and Explore's service graph read
    # traces_service_graph_* unfiltered and would add the two writers' series together.
    if "service-graphs" in procs and "service_graph" in (
            ctx.service_graph.get("connectors") or {}):
        problems.append(f"processor service-graphs writes traces_service_graph_*, which the "
                        f"collector's service_graph connector ({SERVICE_GRAPH}) already writes "
                        "from every span: Grafana's service graph would count each edge twice")
    problems += [f"processor {p!r} is not one Tempo 3.0 has" for p in procs
                 if p not in TEMPO_PROCESSORS | {"local-blocks"}]  # local-blocks: known keys
    problems += [] if writes else ["metrics_generator.storage.remote_write is empty"]
    problems += [f"remote_write[{i}] ({w.get('url')}) lacks send_exemplars: true"
                 for i, w in enumerate(writes) if w.get("send_exemplars") is not True]
    return problems, f"processors {procs}; {len(writes)} remote write(s) with send_exemplars: true"


def check_collector_exemplars(ctx: Ctx, _name: str):
    """Exemplars picked before the tail sampler name traces Tempo may never receive, and
    Grafana shows exemplar dots on any histogram a user explores."""
    pipelines = dig(ctx.collector, "service.pipelines") or {}
    sampled = {n for n, p in pipelines.items() if "tail_sampling" in (p.get("processors") or [])}
    before = {e for n, p in pipelines.items() if n not in sampled
              for e in p.get("exporters") or []}
    problems = [f"connector {name} runs before tail sampling with exemplars.enabled: true: "
                "its exemplars name traces that are not kept"
                for name, conf in (ctx.collector.get("connectors") or {}).items()
                if name in before and dig(conf or {}, "exemplars.enabled") is True]
    return problems, "no connector before tail sampling picks exemplars"


def link(ctx: Ctx, client: str, host: str | None, server: str) -> list[str]:
    """Problems with CLIENT reaching compose service SERVER by the name HOST."""
    def networks(service: str) -> set[str]:
        nets = ctx.services.get(service, {}).get("networks") or ["default"]
        return set(nets if isinstance(nets, list) else nets)
    if host != server:
        return [f"{client} sends to host {host!r}, but the compose service is {server!r}"]
    return [] if networks(client) & networks(server) else [f"{client}, {server}: no shared network"]


def url_of(endpoint) -> tuple[str | None, int | None, str]:
    url = urlsplit(str(endpoint) if "://" in str(endpoint) else f"//{endpoint}")
    return url.hostname, url.port, url.path


def check_collector_to_loki(ctx: Ctx, _name: str):
    endpoint = (dig(ctx.collector, "exporters") or {}).get("otlp_http/loki", {}).get("endpoint")
    if not endpoint:
        return ["otel-collector.yaml has no otlp_http/loki exporter endpoint"], ""
    host, port, path = url_of(endpoint)
    listen = dig(ctx.data["loki"], "server.http_listen_port", 3100)
    problems = link(ctx, "otel-collector", host, "loki")
    if port != listen:
        problems.append(f"the collector sends logs to port {port}, Loki listens on {listen}")
    if path.rstrip("/") != "/otlp":
        problems.append(f"path {path!r}: Loki takes OTLP at /otlp/v1/logs (exporter adds /v1/logs)")
    return problems, f"otlp_http/loki {endpoint} -> Loki's HTTP port {listen}"


def check_collector_to_tempo(ctx: Ctx, _name: str):
    endpoint = (dig(ctx.collector, "exporters") or {}).get("otlp_grpc/tempo", {}).get("endpoint")
    if not endpoint:
        return ["otel-collector.yaml has no otlp_grpc/tempo exporter endpoint"], ""
    host, port, _ = url_of(endpoint)
    receiver = dig(ctx.data["tempo"], "distributor.receivers.otlp.protocols.grpc.endpoint")
    listen = url_of(receiver or "localhost:4317")[1]
    problems = link(ctx, "otel-collector", host, "tempo")
    if port != listen:
        problems.append(f"the collector sends traces to port {port}, Tempo's OTLP gRPC receiver "
                        f"is on {listen}")
    return problems, f"otlp_grpc/tempo {endpoint} -> Tempo's OTLP gRPC receiver {receiver}"


def check_tempo_to_prometheus(ctx: Ctx, _name: str):
    command = command_of(ctx.services.get("prometheus", {}))
    problems = [] if "--web.enable-remote-write-receiver" in command else \
        ["the prometheus service's command lacks --web.enable-remote-write-receiver"]
    for write in dig(ctx.data["tempo"], "metrics_generator.storage.remote_write") or []:
        host, port, path = url_of(write.get("url"))
        problems += link(ctx, "tempo", host, "prometheus")
        if (port, path) != (9090, "/api/v1/write"):
            problems.append(f"{write.get('url')}: Prometheus takes remote write at "
                            ":9090/api/v1/write")
    return problems, "the compose prometheus service at :9090/api/v1/write, receiver enabled"


def mounts(ctx: Ctx, svc: dict) -> tuple[dict[Path, str], dict[str, str]]:
    """A service's bind mounts (host path -> target) and named-volume mounts (target -> volume)."""
    binds, named = {}, {}
    for vol in svc.get("volumes") or []:
        src, dst = (vol.get("source"), vol.get("target")) if isinstance(vol, dict) else \
            (vol.split(":") + [""])[:2]
        if src and src[0] in "./~":
            binds[(ctx.root / src).resolve()] = dst
        elif src in (ctx.compose.get("volumes") or {}):
            named[dst] = src
    return binds, named


def check_data_dirs(ctx: Ctx, name: str):
    var, named = BACKENDS[name]["data_var"], mounts(ctx, ctx.services.get(name, {}))[1]
    defaults = sorted(set(re.findall(r"\$\{%s:-([^}]*)\}" % var, ctx.raw[name])))
    problems = [f"{var} defaults to {d}, but compose mounts named volumes at {sorted(named)}"
                for d in defaults if d not in named]
    if len(defaults) != 1:
        problems.append(f"{var} has defaults {defaults}: expected exactly one")
    paths = re.findall(r"^\s*(\w*(?:path|dir|directory|path_prefix)): (/\S*)", ctx.text[name], re.M)
    problems += [f"{key}: {p} is not on a named volume: lost on recreate, and the image's "
                 "uid 10001 may not write there" for key, p in paths
                 if not any(p == m or p.startswith(m.rstrip("/") + "/") for m in named)]
    return problems, f"{var} defaults to the named volume {defaults}; {len(paths)} paths on it"


def check_compose_command(ctx: Ctx, name: str):
    svc, file = ctx.services.get(name, {}), BACKENDS[name]["file"]
    flags = [a.lstrip("-") for a in command_of(svc)]
    problems = [] if {"config.expand-env=true", "config.expand-env"} & set(flags) else \
        ["the command lacks -config.expand-env=true: every ${...} would reach YAML as is"]
    cfg = next((f.split("=", 1)[1] for f in flags if f.startswith("config.file=")), None)
    target = mounts(ctx, svc)[0].get((ctx.root / file).resolve())
    if cfg is None or cfg != target:
        problems.append(f"-config.file={cfg}, but compose mounts {file} at {target}")
    return problems, f"-config.file={cfg} (where {file} is mounted), -config.expand-env=true"


def check_healthcheck(ctx: Ctx, name: str):
    test, exe = dig(ctx.services.get(name, {}), "healthcheck.test"), BACKENDS[name]["exe"]
    if test != ["CMD", exe, "-health"]:
        return [f"healthcheck test is {test}: want ['CMD', '{exe}', '-health'] (no shell)"], ""
    return [], f"{exe} -health"


CHECKS = [  # (name, function, the backend it checks)
    *[(f"{b}.yaml: {what}", fn, b) for b in ("loki", "tempo") for what, fn in (
        ("expansion as -config.expand-env=true does it, then YAML", check_expansion_and_yaml),
        ("known keys", check_known_keys), ("listeners", check_listeners))],
    ("loki.yaml: schema v13 + tsdb + 24h index, structured metadata", check_loki_schema, "loki"),
    ("loki.yaml: otlp_config rules take effect", check_loki_otlp_rules, "loki"),
    ("tempo.yaml: stream_over_http_enabled", check_tempo_streaming, "tempo"),
    ("tempo.yaml: generator processors, remote write with exemplars", check_tempo_generator,
     "tempo"),
    ("collector: no exemplars picked before tail sampling", check_collector_exemplars, "tempo"),
    ("collector -> Loki: host, port, OTLP path", check_collector_to_loki, "loki"),
    ("collector -> Tempo: host, OTLP gRPC port", check_collector_to_tempo, "tempo"),
    ("Tempo -> Prometheus: remote-write URL, receiver flag", check_tempo_to_prometheus, "tempo"),
    *[(f"{b}: {what}", fn, b) for what, fn in (
        ("data directory is the named volume", check_data_dirs),
        ("compose command and config mount", check_compose_command),
        ("compose healthcheck", check_healthcheck)) for b in ("loki", "tempo")],
]


COMPOSE_ONLY = (check_expansion_and_yaml, check_compose_command, check_healthcheck)


def run_checks(root: Path) -> list[tuple[str, list[str], str]]:
    try:
        ctx = Ctx(root)
    except (OSError, yaml.YAMLError) as err:
        return [("load docker-compose.yml and otel-collector.yaml", [str(err)], "")]
    results = []
    for name, fn, backend in CHECKS:
        if ctx.data[backend] is None and fn not in COMPOSE_ONLY:
            continue  # reported below, on the expansion check's line
        results.append((name, *fn(ctx, backend)))
        if ctx.data[backend] is None and fn is check_expansion_and_yaml:
            skipped = sum(1 for _, f, b in CHECKS if b == backend and f not in COMPOSE_ONLY)
            results[-1][1].append(f"{skipped} checks that read {backend}.yaml did not run")
    return results


SELF_TESTS = [  # (broken copy, file, pattern, replacement, check that must FAIL, for this reason)
    ("Tempo with an ingester block", TEMPO, r"\Z", "\ningester:\n  max_block_duration: 5m\n",
     "tempo.yaml: known keys", r"ingester: Tempo 3\.0 removed the ingester"),
    ("Tempo with the local-blocks processor", TEMPO, r"processors: \[",
     "processors: [local-blocks, ", "tempo.yaml: known keys", r"removed the local-blocks"),
    ("Tempo writing the service graph the collector writes", TEMPO,
     r"processors: \[span-metrics\]", "processors: [service-graphs, span-metrics]",
     "tempo.yaml: generator", r"count each edge twice"),
    ("the collector's span metrics picking exemplars before sampling", COLLECTOR,
     r"(exemplars:\n\s*enabled:) false", r"\1 true", "collector: no exemplars",
     r"span_metrics runs before tail sampling"),
    ("Loki on schema v12", LOKI, r"schema: v13", "schema: v12", "loki.yaml: schema",
     r"active schema is v12"),
    ("a '$' in a comment that is not a reference", LOKI, r"\A", "# this costs $5 a month\n",
     "loki.yaml: expansion", r"line 1 col 14: stray '\$'"),
    ("the collector sending logs to another Loki port", COLLECTOR, r"(BACKENDS_HOST:-loki\}):3100",
     r"\1:3101", "collector -> Loki", r"port 3101, Loki listens on 3100"),
    ("an unknown top-level key", LOKI, r"^limits_config:", "limit_config:", "loki.yaml: known keys",
     r"limit_config: not a top-level key"),
    ("a variable without default that compose does not set", TEMPO, r"\$\{TEMPO_HTTP_PORT:-3200\}",
     "${TEMPO_HTTP_PORT}", "tempo.yaml: expansion", r"TEMPO_HTTP_PORT\} has no default"),
    ("Tempo's OTLP gRPC receiver on its localhost default", TEMPO, r"(\n\s*grpc:)\n\s*endpoint:.*",
     r"\1 {}", "tempo.yaml: listeners", r"grpc receiver binds localhost"),
    ("Tempo's data volume mounted elsewhere", COMPOSE, r"tempo-data:/var/tempo\b",
     "tempo-data:/tempo", "tempo: data directory", r"TEMPO_DATA_DIR defaults to /var/tempo, but"),
    ("Loki otlp_config rules without ignore_defaults", LOKI, r"^[ \t]*ignore_defaults: true.*\n",
     "", "loki.yaml: otlp_config", r"unless resource_attributes.ignore_defaults: true"),
]


def self_test(root: Path) -> list[tuple[str, list[str], str]]:
    results = []
    for what, rel, pattern, replacement, check, reason in SELF_TESTS:
        with tempfile.TemporaryDirectory(prefix="check-backend-configs-") as tmp:
            for f in (LOKI, TEMPO, COLLECTOR, COMPOSE, SERVICE_GRAPH):
                (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / f, Path(tmp) / f)
            broken, count = re.subn(pattern, replacement, (root / rel).read_text(), flags=re.M)
            (Path(tmp) / rel).write_text(broken)
            name, problems, _ = next((r for r in run_checks(Path(tmp)) if r[0].startswith(check)),
                                     (check, ["the check did not run"], ""))
        hit = next((p for p in problems if re.search(reason, p)), None)
        if hit:
            failure = []
        elif not count:
            failure = [f"the mutation /{pattern}/ matched nothing in {rel}"]
        else:
            failure = [f"'{name}' did not fail for /{reason}/: {problems or 'it passed'}"]
        results.append((f"self-test: {what}", failure, f"'{name}' fails: {hit}"))
    return results


def print_result(name: str, problems: list[str], detail: str) -> None:
    print(f"FAIL  {name}: {problems[0]}" if problems else f"PASS  {name} ({detail})")
    for problem in problems[1:]:
        print(f"      | {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--self-test", action="store_true", help="run only the self-test")
    args = parser.parse_args()
    start, root = time.monotonic(), args.root.resolve()
    missing = [f for f in (LOKI, TEMPO, COLLECTOR, COMPOSE) if not (root / f).is_file()]
    if missing:
        print(f"check_backend_configs: not found under {root}: {', '.join(missing)}")
        return 2
    checks = [] if args.self_test else run_checks(root)
    tests = self_test(root)
    for result in checks + tests:
        print_result(*result)
    bad = [name for name, problems, _ in checks + tests if problems]
    took = f"{time.monotonic() - start:.1f} s"
    if bad:
        print(f"\ncheck_backend_configs: {len(checks)} checks, {len(tests)} self-tests; "
              f"FAILED: {'; '.join(bad)} ({took})")
        return 1
    print(f"\ncheck_backend_configs: {len(checks)} checks, {len(tests)} self-tests, "
          f"all passed ({took})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
