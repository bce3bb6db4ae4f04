"""Checks the Helm chart's rendered manifests (scripts/helm/check-chart.sh renders them).

    python3 check_chart.py RENDER_DIR --golden DIR [--update] [--otelcol BIN]
    python3 check_chart.py RENDER_DIR --golden DIR --self-test [--otelcol BIN]

RENDER_DIR holds one `helm template` output per values file (NAME.yaml). For each:
  1. files: every config file the chart mounts (collector, Tempo, Loki, Prometheus rules,
     Alertmanager, Grafana provisioning and dashboards) is byte for byte the repository's file,
     which proves Helm followed the chart's symlinks (files/observability, files/grafana) and
     nothing was copied;
  2. golden: the default render equals tests/helm/golden/default.yaml, with those verbatim
     files shown as one line each, and every other render's difference from it equals
     tests/helm/golden/NAME.diff (`--update` rewrites them instead, for a reviewed change);
  3. kubernetes: every manifest validates, strictly (unknown fields fail), against the schemas
     of the oldest Kubernetes the chart allows (Chart.yaml kubeVersion) and of the newest that
     kubernetes-validate bundles;
  4. policy: check_policy.py's rules (security and production readiness);
  5. collectors (--otelcol): each tier's config files, taken from the rendered ConfigMap in the
     order of the rendered container args, with the rendered env, pass `otelcol validate`.
Exit 1 with one FAIL line per problem. `--self-test` instead plants a fault for checks 1, 3
and 5 in the default render (an edited copy of a file, an unknown field, a broken agent
config) and exits 1 unless each is reported.
"""

import argparse
import copy
import difflib
import functools
import sys
from pathlib import Path

import kubernetes_validate
import yaml

import check_policy
import collector_configs

ROOT = Path(__file__).resolve().parents[2]
# kubernetes-validate reads its schema files again for every manifest; they never change.
kubernetes_validate.utils.schema_contents = functools.lru_cache(kubernetes_validate.utils.schema_contents)
# The oldest Kubernetes of Chart.yaml's kubeVersion (>=1.29) and the newest bundled schemas.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]

# ConfigMap key -> repository file it must equal (a trailing * matches any key).
VERBATIM = {
    ("otel-collector-config", "otel-collector.yaml"): "observability/otel-collector.yaml",
    ("otel-collector-config", "service-graph.yaml"): "observability/otel-collector.service-graph.yaml",
    ("tempo-config", "tempo.yaml"): "observability/tempo.yaml",
    ("loki-config", "loki.yaml"): "observability/loki.yaml",
    ("alertmanager-config", "alertmanager.yml"): "observability/alertmanager.yml",
    ("prometheus-rules", "*"): "observability/rules/*.rules.yml",
    ("grafana-provisioning", "datasources.yaml"): "grafana/provisioning/datasources/datasources.yaml",
    ("grafana-provisioning", "dashboards.yaml"): "grafana/provisioning/dashboards/dashboards.yaml",
    ("grafana-dashboards", "*"): "grafana/dashboards/*.json",
}


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def config_maps(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}


def check_verbatim_files(docs: list[dict]) -> tuple[list[str], dict]:
    """Problems, and {(configmap, key): repository path} of the verbatim files."""
    problems, found = [], {}
    maps = config_maps(docs)
    for (name, key), pattern in VERBATIM.items():
        data = maps.get(name)
        if data is None:
            problems.append(f"ConfigMap {name} is missing")
            continue
        if key == "*":
            wanted = {p.name: p for p in sorted(ROOT.glob(pattern))}
        else:
            wanted = {key: ROOT / pattern}
        if key == "*" and set(data) != set(wanted):
            problems.append(f"ConfigMap {name} has keys {sorted(data)}, the repository {sorted(wanted)}")
        for k, path in wanted.items():
            if data.get(k) != path.read_text():
                problems.append(f"ConfigMap {name} key {k} is not {path.relative_to(ROOT)} verbatim")
            else:
                found[(name, k)] = str(path.relative_to(ROOT))
    return problems, found


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (the tier configs, scripts) as literal blocks, readable in a diff."""


_LiteralDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def golden_text(docs: list[dict], verbatim: dict) -> str:
    """The render with each verbatim file replaced by a line naming it, and no checksums."""
    out = []
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            name = doc["metadata"]["name"]
            for key in doc.get("data") or {}:
                if (name, key) in verbatim:
                    doc["data"][key] = f"<verbatim: {verbatim[(name, key)]}>"
        # Config checksums change with the mounted files, which are not the chart's to review.
        annotations = ((doc.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        for key in annotations:
            if key.startswith("checksum/"):
                annotations[key] = "<sha256 of the mounted config>"
        out.append(yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, width=120))
    return "---\n".join(out)


def golden_diff(default: str, text: str, name: str) -> str:
    """A values file's golden file: what its render changes in the default one."""
    lines = difflib.unified_diff(default.splitlines(keepends=True), text.splitlines(keepends=True),
                                 "default.yaml", f"{name}.yaml", n=3)
    # Hunks without line numbers: an edit elsewhere in default.yaml leaves this file alone.
    return "".join("@@\n" if line.startswith("@@ ") else line for line in lines)


def check_golden(path: Path, text: str, update: bool) -> list[str]:
    shown_path = path.relative_to(ROOT)
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return []
    if not path.exists():
        return [f"no golden file {shown_path}: run scripts/helm/check-chart.sh --update"]
    if path.read_text() == text:
        return []
    lines = list(difflib.unified_diff(path.read_text().splitlines(), text.splitlines(),
                                      str(shown_path), "rendered", lineterm="", n=2))
    shown = "\n".join(lines[:60]) + ("\n..." if len(lines) > 60 else "")
    return [f"render differs from {shown_path} (review, then scripts/helm/check-chart.sh --update):\n{shown}"]


def check_kubernetes(docs: list[dict]) -> list[str]:
    problems = []
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            what = f"{doc['kind']}/{doc['metadata']['name']}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"Kubernetes {version}: {what}: {e.message} at {'.'.join(map(str, e.path))}")
            except Exception as e:  # unknown kind or version: a failure too, never a pass
                problems.append(f"Kubernetes {version}: {what}: {e}")
    return problems


def self_test(render: Path, otelcol: str | None) -> list[str]:
    """Plants one fault per check in the default render; each must be reported."""
    docs = load(render)
    problems = []
    if check_verbatim_files(docs)[0] or check_kubernetes(docs):
        return ["the render used for the self-test is not clean to begin with"]

    def config_map(d: list[dict], name: str) -> dict:
        return next(x for x in d if x["kind"] == "ConfigMap" and x["metadata"]["name"] == name)["data"]

    broken = copy.deepcopy(docs)
    config_map(broken, "tempo-config")["tempo.yaml"] += "# an edited copy\n"
    if not check_verbatim_files(broken)[0]:
        problems.append("an edited copy of tempo.yaml was NOT caught")
    broken = copy.deepcopy(docs)
    next(x for x in broken if x["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["probe"] = {}
    if not check_kubernetes(broken):
        problems.append("an unknown container field was NOT caught by the strict schemas")
    if otelcol:
        for fault, edit in {
            "an unknown load_balancing key": lambda t: t.replace("routing_key:", "routing_keys: x\n    routing_key:"),
            "a pipeline naming an undefined processor": lambda t: t.replace("[memory_limiter, batch]", "[memory_limiter, batchh]"),
        }.items():
            broken = copy.deepcopy(docs)
            data = config_map(broken, "otel-collector-config")
            data["agent.yaml"] = edit(data["agent.yaml"])
            if data["agent.yaml"] == config_map(docs, "otel-collector-config")["agent.yaml"]:
                problems.append(f"self-test: could not plant {fault}")
            elif not any(p for tier, p, _ in collector_configs.validate_tiers(broken, otelcol) if tier == "agent"):
                problems.append(f"{fault} in the agent tier was NOT caught")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("render_dir", type=Path)
    parser.add_argument("--golden", type=Path, required=True)
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--otelcol", help="the native collector, for `otelcol validate`")
    parser.add_argument("--self-test", action="store_true", help="plant faults in RENDER_DIR/default.yaml")
    args = parser.parse_args()
    if args.self_test:
        problems = self_test(args.render_dir / "default.yaml", args.otelcol)
        print("\n".join(problems) or "self-test: every planted fault was caught")
        return 1 if problems else 0

    failures = 0

    def report(what: str, problems: list[str]) -> None:
        nonlocal failures
        if problems:
            failures += 1
            print(f"FAIL  {what}")
            for p in problems:
                print("      " + p.replace("\n", "\n      "))
        else:
            print(f"PASS  {what}")

    # default first: the other golden files are differences from it.
    renders = sorted(args.render_dir.glob("*.yaml"), key=lambda p: (p.stem != "default", p.stem))
    if not renders:
        report("renders", [f"nothing rendered in {args.render_dir}"])
    for render in renders:
        name = render.stem
        docs = load(render)
        problems, verbatim = check_verbatim_files(docs)
        report(f"{name}: the {len(verbatim)} mounted config files are the repository's, verbatim", problems)
        text = golden_text(load(render), verbatim)
        if name == "default":
            default_text, golden = text, args.golden / "default.yaml"
        else:
            # Rendered after default.yaml (sorted): kept as the difference from it.
            text, golden = golden_diff(default_text, text, name), args.golden / f"{name}.diff"
        report(f"{name}: golden file {golden.name}" + (" (updated)" if args.update else ""),
               check_golden(golden, text, args.update))
        report(f"{name}: {len(docs)} manifests valid for Kubernetes {' and '.join(KUBERNETES_VERSIONS)} (strict)",
               check_kubernetes(docs))
        report(f"{name}: policy ({len(check_policy.RULES)} rules)", check_policy.check(docs, name == "default"))
        if args.otelcol:
            for tier, problems, note in collector_configs.validate_tiers(docs, args.otelcol):
                report(f"{name}: otelcol validate, {tier} tier{note}", problems)
    if failures:
        print(f"\ncheck_chart: {failures} check(s) FAILED")
        return 1
    print("\ncheck_chart: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
