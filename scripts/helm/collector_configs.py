"""The collector tiers' configs as the rendered chart runs them, and `otelcol validate` on them.

For the agent (DaemonSet) and the gateway (StatefulSet) otel-collector-*: the files named by the
container's --config args, in that order, from the ConfigMap the pod mounts, and the env the
container sets (fieldRef values get stand-in values: a pod name, a node name).

Three components of the tier files are not in the native collector: no module version of them
can be had with verified checksums here (k8s_attributes, load_balancing: a dependency is refused;
service_graph: the module itself, see observability/otel-collector.service-graph.yaml). The
contrib image has them. For `otelcol validate` each is replaced by a stand-in of the same
signal shape (a batch processor, an otlp_grpc exporter to the first backend, a span_metrics
connector), which proves the merged wiring; their own settings are checked here statically
against the keys their 0.161 config structs define.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

STAND_INS = {
    # kind, type -> stand-in id
    ("processors", "k8s_attributes"): "batch/k8s_attributes_stand_in",
    ("exporters", "load_balancing"): "otlp_grpc/load_balancing_stand_in",
    ("connectors", "service_graph"): "span_metrics/service_graph_stand_in",
}
TIERS = {"agent": ("DaemonSet", "otel-collector-agent"), "gateway": ("StatefulSet", "otel-collector-gateway")}
FIELD_REF_STAND_INS = {"metadata.name": "otel-collector-gateway-0", "spec.nodeName": "node-1",
                       "status.podIP": "10.0.0.1"}

# Keys of the stood-in components' config structs (exporter/loadbalancingexporter v0.161.0,
# processor/k8sattributesprocessor v1.0.0), for the static check.
LOAD_BALANCING_KEYS = {"timeout", "retry_on_failure", "sending_queue", "protocol", "resolver", "routing_key",
                       "routing_attributes"}
ROUTING_KEYS = {"service", "traceID", "metric", "resource", "streamID", "attributes"}
RESOLVERS = {"static": {"hostnames"}, "dns": {"hostname", "port", "interval", "timeout"},
             "k8s": {"service", "ports", "timeout", "return_hostnames"},
             "aws_cloud_map": {"namespace", "service_name", "health_status", "interval", "timeout", "port", "owner_account"}}
K8S_ATTRIBUTES_KEYS = {"auth_type", "context", "passthrough", "extract", "filter", "pod_association", "exclude",
                       "wait_for_metadata", "wait_for_metadata_timeout", "watch_sync_period", "pod_delete_grace_period"}
K8S_ATTRIBUTES_FILTER_KEYS = {"node", "node_from_env_var", "namespace", "fields", "labels"}


def workload(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def tier_files(docs: list[dict], tier: str) -> tuple[list[tuple[str, str]], dict]:
    """[(file name, text)] in --config order, and the container's env."""
    pod = workload(docs, *TIERS[tier])["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    files = {}  # path in the container -> text
    for volume in pod["volumes"]:
        if "configMap" in volume and volume["name"] in mounts:
            data = maps[volume["configMap"]["name"]]
            for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                files[f"{mounts[volume['name']]}/{item['path']}"] = data[item["key"]]
    configs = []
    for arg in container["args"]:
        path = arg.removeprefix("--config=")
        configs.append((Path(path).name, files[path]))
    env = {}
    for e in container.get("env") or []:
        env[e["name"]] = e["value"] if "value" in e else FIELD_REF_STAND_INS[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return configs, env


def static_problems(configs: list[tuple[str, str]], env: dict) -> list[str]:
    """The stood-in components' settings, checked against their config structs' keys."""
    problems = []
    for name, text in configs:
        cfg = yaml.safe_load(text) or {}
        lb = (cfg.get("exporters") or {}).get("load_balancing")
        if lb is not None:
            problems += [f"{name}: load_balancing: unknown key {k}" for k in set(lb) - LOAD_BALANCING_KEYS]
            if lb.get("routing_key") not in ROUTING_KEYS:
                problems.append(f"{name}: load_balancing.routing_key {lb.get('routing_key')!r} is not one of {sorted(ROUTING_KEYS)}")
            if "endpoint" in ((lb.get("protocol") or {}).get("otlp") or {}):
                problems.append(f"{name}: load_balancing.protocol.otlp.endpoint is set by the resolver, not here")
            resolver = lb.get("resolver") or {}
            if len(resolver) != 1 or next(iter(resolver)) not in RESOLVERS:
                problems.append(f"{name}: load_balancing.resolver needs exactly one of {sorted(RESOLVERS)}, got {sorted(resolver)}")
            for kind, settings in resolver.items():
                problems += [f"{name}: resolver.{kind}: unknown key {k}" for k in set(settings or {}) - RESOLVERS.get(kind, set())]
            hostnames = (resolver.get("static") or {}).get("hostnames", [])
            if "static" in resolver and (not hostnames or any(not re.fullmatch(r"[A-Za-z0-9.-]+:[0-9]+", h) for h in hostnames)):
                problems.append(f"{name}: resolver.static.hostnames must be host:port entries, got {hostnames}")
            if "k8s" in resolver and not (resolver["k8s"] or {}).get("service"):
                problems.append(f"{name}: resolver.k8s.service is empty")
        k8s = (cfg.get("processors") or {}).get("k8s_attributes")
        if k8s is not None:
            problems += [f"{name}: k8s_attributes: unknown key {k}" for k in set(k8s) - K8S_ATTRIBUTES_KEYS]
            flt = k8s.get("filter") or {}
            problems += [f"{name}: k8s_attributes.filter: unknown key {k}" for k in set(flt) - K8S_ATTRIBUTES_FILTER_KEYS]
            if flt.get("node_from_env_var") and flt["node_from_env_var"] not in env:
                problems.append(f"{name}: k8s_attributes reads the node from ${flt['node_from_env_var']}, which the pod does not set")
    return problems


def with_stand_ins(text: str) -> tuple[str, set[str]]:
    """The config with the components missing from the native build replaced; which ones were."""
    cfg = yaml.safe_load(text) or {}
    stand_in_of = {component: stand_in for (_, component), stand_in in STAND_INS.items()}
    replaced = set()
    for (kind, component), stand_in in STAND_INS.items():
        section = cfg.get(kind) or {}
        if component in section:
            section[stand_in] = stand_in_settings(component, section.pop(component))
            replaced.add(component)
    # Pipelines name them too, also when another file of the tier defines them.
    for pipeline in ((cfg.get("service") or {}).get("pipelines") or {}).values():
        for key in ("receivers", "processors", "exporters"):
            if key in pipeline:
                replaced |= set(pipeline[key]) & set(stand_in_of)
                pipeline[key] = [stand_in_of.get(i, i) for i in pipeline[key]]
    if not replaced:
        return text, set()
    return yaml.safe_dump(cfg, sort_keys=False), replaced


def stand_in_settings(component: str, settings: dict) -> dict:
    if component != "load_balancing":
        return {}
    resolver = settings["resolver"]
    first = resolver["static"]["hostnames"][0] if "static" in resolver else f"{resolver['k8s']['service']}:4317"
    return {"endpoint": first, "tls": {"insecure": True}}


def validate_tiers(docs: list[dict], otelcol: str):
    """Yields (tier, problems, note) for each collector tier of a render."""
    for tier in TIERS:
        configs, env = tier_files(docs, tier)
        problems = static_problems(configs, env)
        stood_in = set()
        with tempfile.TemporaryDirectory() as tmp:
            args = []
            for name, text in configs:
                text, replaced = with_stand_ins(text)
                stood_in |= replaced
                (Path(tmp) / name).write_text(text)
                args.append(f"--config={Path(tmp) / name}")
            # Only the pod's variables: otel-collector.yaml's defaults apply to the rest, as in the pod.
            clean_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
            result = subprocess.run([otelcol, "validate", *args], env={**clean_env, **env},
                                    capture_output=True, text=True)
            if result.returncode != 0:
                problems.append((result.stdout + result.stderr).strip())
        note = f" ({', '.join(sorted(stood_in))} stood in, settings checked statically)" if stood_in else ""
        yield tier, problems, note
