#!/usr/bin/env python3
"""Checks and unit-tests the Prometheus rules in observability/rules/.

1. The rule files are what scripts/observability/gen_rules.py writes (scale 1), and its
   stack-test copy (`--time-scale 20`) passes `promtool check rules` too.
2. Every alert has a severity (page or ticket), a summary, a description, and a `dashboard`
   link to a panel that exists in grafana/dashboards.
3. The unit tests in observability/rules/tests/*.test.yml pass under `promtool test rules`.
   They say when an alert fires and with which labels; promtool also compares annotations,
   so this script fills each expected alert's annotations in from the rule file (templates
   expanded with the expected labels) instead of the tests repeating every text.
4. Every alert has a test where it fires and one where it stays silent.

    python3 scripts/observability/test_rules.py [--promtool PATH]

Exit 1 on any failure. Python 3.11 with PyYAML.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "observability" / "rules"
TEMPLATE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def alerts_of(rule_files: list[Path]) -> dict[str, dict]:
    out = {}
    for f in rule_files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule
    return out


def panels() -> dict[str, set[str]]:
    """{dashboard uid: {"panel-<id>", ...}} of the provisioned dashboards."""
    out = {}
    for f in (ROOT / "grafana" / "dashboards").glob("*.json"):
        dash = json.loads(f.read_text())
        ids = {f"panel-{p['id']}" for top in dash["panels"] for p in [top, *top.get("panels", [])]}
        out[dash["uid"]] = ids
    return out


def check_annotations(alerts: dict[str, dict]) -> list[str]:
    problems, known = [], panels()
    for name, rule in alerts.items():
        labels, notes = rule.get("labels") or {}, rule.get("annotations") or {}
        if labels.get("severity") not in ("page", "ticket"):
            problems.append(f"{name}: severity {labels.get('severity')!r}, want page or ticket")
        for key in ("summary", "description", "dashboard"):
            if not str(notes.get(key) or "").strip():
                problems.append(f"{name}: no {key} annotation")
        if "Look first" not in str(notes.get("description")):
            problems.append(f"{name}: the description does not say where to look first")
        url = urlsplit(str(notes.get("dashboard") or ""))
        uid = url.path.rsplit("/", 1)[-1]
        panel = (parse_qs(url.query).get("viewPanel") or [""])[0]
        if uid not in known:
            problems.append(f"{name}: dashboard link to unknown dashboard {uid!r}")
        elif panel not in known[uid]:
            problems.append(f"{name}: dashboard link to {uid} names no panel {panel!r}")
    return problems


def filled_tests(test_file: Path, alerts: dict[str, dict], out_dir: Path) -> tuple[Path, dict]:
    """A copy of the test file with absolute rule paths and annotations filled in; and which
    alerts it shows firing and silent."""
    doc = yaml.safe_load(test_file.read_text())
    doc["rule_files"] = [str((test_file.parent / r).resolve()) for r in doc["rule_files"]]
    seen: dict[str, set[str]] = {}
    for test in doc.get("tests", []):
        for case in test.get("alert_rule_test", []):
            name = case["alertname"]
            seen.setdefault(name, set()).add("fires" if case.get("exp_alerts") else "silent")
            for exp in case.get("exp_alerts") or []:
                if "exp_annotations" in exp or name not in alerts:
                    continue
                labels = exp.get("exp_labels") or {}
                exp["exp_annotations"] = {
                    k: TEMPLATE.sub(lambda m: str(labels.get(m.group(1), "")), str(v))
                    for k, v in (alerts[name].get("annotations") or {}).items()}
    path = out_dir / test_file.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path, seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--promtool", required=True)
    args = ap.parse_args()
    failures = []

    gen = [sys.executable, str(ROOT / "scripts/observability/gen_rules.py")]
    if subprocess.run([*gen, "--check"]).returncode:
        failures.append("the rule files differ from gen_rules.py")
    rule_files = sorted(RULES.glob("*.rules.yml"))
    with tempfile.TemporaryDirectory(prefix="rules-") as tmp:
        scaled = Path(tmp) / "scaled"
        subprocess.run([*gen, "--time-scale", "20", "--out", str(scaled)], check=True,
                       stdout=subprocess.DEVNULL)
        for files, what in ((rule_files, "rules"), (sorted(scaled.glob("*.yml")), "scale 1/20")):
            r = subprocess.run([args.promtool, "check", "rules", *map(str, files)],
                               capture_output=True, text=True)
            if r.returncode:
                failures.append(f"promtool check rules ({what}):\n{r.stdout}{r.stderr}")

        alerts = alerts_of(rule_files)
        failures += check_annotations(alerts)
        coverage: dict[str, set[str]] = {}
        filled = []
        for test_file in sorted((RULES / "tests").glob("*.test.yml")):
            path, seen = filled_tests(test_file, alerts, Path(tmp))
            filled.append(path)
            for name, kinds in seen.items():
                coverage.setdefault(name, set()).update(kinds)
        unknown = sorted(set(coverage) - set(alerts))
        if unknown:
            failures.append(f"tests name alerts the rules do not have: {unknown}")
        for name in sorted(alerts):
            missing = {"fires", "silent"} - coverage.get(name, set())
            if missing:
                failures.append(f"{name}: no test where it {' or '.join(sorted(missing))}")
        r = subprocess.run([args.promtool, "test", "rules", *map(str, filled)],
                           capture_output=True, text=True)
        print(r.stdout.strip())
        if r.returncode:
            failures.append(f"promtool test rules failed:\n{r.stderr.strip()}")

    for f in failures:
        print(f"FAIL  {f}", file=sys.stderr)
    if failures:
        return 1
    print(f"rules: {len(alerts)} alerts, each with a firing and a silent unit test; "
          f"{len(rule_files)} rule files match gen_rules.py; scale 1/20 valid too")
    return 0


if __name__ == "__main__":
    sys.exit(main())
