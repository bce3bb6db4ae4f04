"""Checks observability/otel-collector.service-graph.yaml, the file compose layers on the
collector config, and writes a stand-in of it that the native collector can validate.

The collector merges a second --config into the first: maps merge, lists are REPLACED. So the
overlay's pipeline lists must be the base config's lists plus `service_graph`, or compose would
silently drop an exporter or receiver. And the overlay may add nothing but that connector.

The native collector cannot contain the service_graph connector (its module cannot be built
here with a verified checksum), so `--stand-in OUT` writes the overlay with a span_metrics
connector in its place (also traces -> metrics): `otelcol validate --config=BASE
--config=OUT` then proves the merged wiring, though not the connector's own settings.

    python3 service_graph_overlay.py BASE OVERLAY [--stand-in OUT]     exit 1 on a problem
"""

import argparse
import sys

import yaml

CONNECTOR = "service_graph"
STAND_IN = "span_metrics/service_graph_stand_in"
# Where the overlay may add the connector: pipeline -> list.
PLACES = {"traces/in": "exporters", "metrics/derived": "receivers"}


def problems(base: dict, overlay: dict) -> list[str]:
    found = []
    if set(overlay) != {"connectors", "service"}:
        found.append(f"top-level keys {sorted(overlay)}: want only connectors and service")
    if set(overlay.get("connectors") or {}) != {CONNECTOR}:
        found.append(f"connectors {sorted(overlay.get('connectors') or {})}: want only {CONNECTOR}")
    service = overlay.get("service") or {}
    if set(service) != {"pipelines"}:
        found.append(f"service keys {sorted(service)}: want only pipelines")
    pipelines = service.get("pipelines") or {}
    if set(pipelines) != set(PLACES):
        found.append(f"pipelines {sorted(pipelines)}: want {sorted(PLACES)}")
    for name, key in PLACES.items():
        got = (pipelines.get(name) or {})
        if set(got) != {key}:
            found.append(f"pipeline {name}: sets {sorted(got)}, want only {key}")
        want = base["service"]["pipelines"][name][key] + [CONNECTOR]
        if sorted(got.get(key) or []) != sorted(want):
            found.append(f"pipeline {name} {key}: {got.get(key)}; lists replace on merge, "
                         f"so it must be the base list plus {CONNECTOR}: {want}")
    return found


def stand_in(overlay: dict) -> dict:
    pipelines = {name: {key: [STAND_IN if c == CONNECTOR else c for c in lists[key]]}
                 for name, lists in overlay["service"]["pipelines"].items()
                 for key in lists}
    return {"connectors": {STAND_IN: {}}, "service": {"pipelines": pipelines}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("overlay")
    parser.add_argument("--stand-in", metavar="OUT")
    args = parser.parse_args()
    with open(args.base) as f:
        base = yaml.safe_load(f)
    with open(args.overlay) as f:
        overlay = yaml.safe_load(f)
    found = problems(base, overlay)
    for problem in found:
        print(f"{args.overlay}: {problem}", file=sys.stderr)
    if found:
        return 1
    if args.stand_in:
        with open(args.stand_in, "w") as f:
            yaml.safe_dump(stand_in(overlay), f, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
