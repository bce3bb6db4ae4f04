"""Security and production-readiness rules for the chart's rendered manifests.

Every pod (Deployment, StatefulSet, DaemonSet, Job):
  non-root      runs as a non-root user, RuntimeDefault seccomp; no host namespaces, host
                paths or host ports
  containers    no privilege escalation, all capabilities dropped, read-only root filesystem
  resources     CPU and memory requests and limits on every container; memory request = limit
  probes        liveness and readiness on every long-running container; the Rust services
                answer them on /healthz and /readyz
  images        pinned (a tag, never latest) and the tag docker-compose.yml uses
  api-access    no service-account token unless a RoleBinding grants that account something;
                no Service-link variables (enableServiceLinks: false)
  rbac          namespaced and read-only: Roles only, get/list/watch, no wildcards
  total         values.yaml states the default render's resource total (checked on it only)

An exception is an annotation on the workload, `policy.otel-demo/exempt-<rule>: <why>`, with the
reason in words; an unexplained or unknown exemption is itself a violation.

    python3 check_policy.py RENDER.yaml [--total]    exit 1 on a violation
    python3 check_policy.py --self-test RENDER.yaml  every rule must catch a planted violation
"""

import argparse
import copy
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy/helm/otel-demo/values.yaml"
COMPOSE = ROOT / "docker-compose.yml"
RULES = ["non-root", "containers", "resources", "probes", "images", "api-access", "rbac", "total"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
EXEMPT = "policy.otel-demo/exempt-"
SERVICES_IMAGE = "otel-rust-demo/services"
READ_ONLY_VERBS = {"get", "list", "watch"}


def compose_images() -> set[str]:
    """Every image docker-compose.yml runs, with ${VAR:-default} tags resolved to the default."""
    compose = yaml.safe_load(COMPOSE.read_text())
    images = set()
    for service in compose["services"].values():
        if "image" in service:
            images.add(re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", service["image"]))
    return images


def cpu_millis(q: str) -> int:
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def mebibytes(q: str) -> int:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return int(float(q[:-2]) * units[q[-2:]])


def pod_of(doc: dict) -> dict:
    spec = doc["spec"]
    return spec["template"]["spec"]


def bound_service_accounts(docs: list[dict]) -> set[str]:
    return {s["name"] for d in docs if d["kind"] == "RoleBinding" for s in d.get("subjects", [])
            if s["kind"] == "ServiceAccount"}


def workload_violations(doc: dict, bound: set[str], allowed_images: set[str]) -> dict[str, list[str]]:
    """rule -> problems of one workload."""
    found = {rule: [] for rule in RULES}
    pod = pod_of(doc)
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
        found["non-root"].append("pod securityContext needs runAsNonRoot: true and a non-zero runAsUser")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        found["non-root"].append("pod seccompProfile is not RuntimeDefault")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found["non-root"].append(f"{key}: true")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            found["non-root"].append(f"hostPath volume {volume['name']}")
    long_running = doc["kind"] != "Job"
    for c in (pod.get("initContainers") or []) + pod["containers"]:
        name = c["name"]
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
            found["containers"].append(f"{name}: allowPrivilegeEscalation must be false, never privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []) or (sc.get("capabilities") or {}).get("add"):
            found["containers"].append(f"{name}: capabilities must drop ALL and add none")
        if sc.get("readOnlyRootFilesystem") is not True:
            found["containers"].append(f"{name}: readOnlyRootFilesystem must be true")
        for port in c.get("ports") or []:
            if "hostPort" in port:
                found["non-root"].append(f"{name}: hostPort {port['hostPort']}")
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    found["resources"].append(f"{name}: no {kind}.{resource}")
        memory = [(resources.get(k) or {}).get("memory") for k in ("requests", "limits")]
        if None not in memory and mebibytes(memory[0]) != mebibytes(memory[1]):
            found["resources"].append(f"{name}: memory request {memory[0]} != limit {memory[1]}")
        if long_running:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    found["probes"].append(f"{name}: no {probe}")
            if c["image"].startswith(SERVICES_IMAGE + ":"):
                paths = {p: ((c.get(p) or {}).get("httpGet") or {}).get("path") for p in ("livenessProbe", "readinessProbe")}
                if paths != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                    found["probes"].append(f"{name}: a Rust service probes /healthz (liveness) and /readyz (readiness), got {paths}")
        image = c["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if not tag or tag == "latest":
            found["images"].append(f"{name}: image {image} is not pinned")
        elif image not in allowed_images:
            found["images"].append(f"{name}: image {image} is not one docker-compose.yml uses")
    sa = pod.get("serviceAccountName", "default")
    if pod.get("automountServiceAccountToken") is not False and sa not in bound:
        found["api-access"].append(f"service-account token mounted, but nothing is granted to {sa}")
    if pod.get("enableServiceLinks") is not False:
        found["api-access"].append("enableServiceLinks must be false")
    return found


def rbac_violations(doc: dict) -> list[str]:
    if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        return [f"{doc['kind']}/{doc['metadata']['name']}: cluster-wide access"]
    problems = []
    if doc["kind"] == "Role":
        for rule in doc.get("rules") or []:
            verbs, resources = set(rule.get("verbs") or []), set(rule.get("resources") or [])
            if not verbs <= READ_ONLY_VERBS or "*" in resources or "*" in set(rule.get("apiGroups") or []):
                problems.append(f"Role/{doc['metadata']['name']}: {sorted(verbs)} on {sorted(resources)} is not read-only and explicit")
    return problems


def resource_total(docs: list[dict]) -> str:
    """The values.yaml line: sum over long-running pods (a DaemonSet counts once, one node)."""
    sums = {"requests": [0, 0], "limits": [0, 0]}
    for doc in docs:
        if doc["kind"] not in WORKLOADS - {"Job"}:
            continue
        replicas = doc["spec"].get("replicas", 1)
        for c in pod_of(doc)["containers"]:
            for kind in sums:
                sums[kind][0] += replicas * cpu_millis(c["resources"][kind]["cpu"])
                sums[kind][1] += replicas * mebibytes(c["resources"][kind]["memory"])
    return ("Total (default values, one node): requests cpu {}m memory {}Mi; limits cpu {}m memory {}Mi"
            .format(*sums["requests"], *sums["limits"]))


def check(docs: list[dict], total: bool = False, values_text: str | None = None) -> list[str]:
    """Violations of every rule, as lines."""
    problems = []
    bound = bound_service_accounts(docs)
    allowed_images = compose_images()
    for doc in docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        problems += [f"[rbac] {p}" for p in rbac_violations(doc)]
        if doc["kind"] not in WORKLOADS:
            continue
        annotations = doc["metadata"].get("annotations") or {}
        exempt = {k[len(EXEMPT):]: v for k, v in annotations.items() if k.startswith(EXEMPT)}
        for rule, why in exempt.items():
            if rule not in RULES or len(str(why).split()) < 4:
                problems.append(f"[exemption] {what}: exempt-{rule} needs a known rule and a reason in words")
        for rule, found in workload_violations(doc, bound, allowed_images).items():
            if rule not in exempt:
                problems += [f"[{rule}] {what}: {p}" for p in found]
    if total:
        want = resource_total(docs)
        text = VALUES.read_text() if values_text is None else values_text
        if want not in text:
            problems.append(f"[total] values.yaml does not state the default render's total: {want}")
    return problems


def self_test(docs: list[dict]) -> list[str]:
    """Plants one violation per rule in a copy of a clean render; each must be reported."""
    def first(kind: str, name: str | None = None) -> dict:
        return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))

    def service_container(d: list[dict]) -> dict:
        return pod_of(next(x for x in d if x["kind"] == "Deployment" and x["metadata"]["name"] == "service-a"))["containers"][0]

    plants = {
        "non-root": lambda d: pod_of(d[docs.index(first("Deployment"))])["securityContext"].update(runAsNonRoot=False),
        "containers": lambda d: service_container(d)["securityContext"].pop("readOnlyRootFilesystem"),
        "resources": lambda d: service_container(d)["resources"]["limits"].pop("memory"),
        "probes": lambda d: service_container(d)["readinessProbe"]["httpGet"].update(path="/healthz"),
        "images": lambda d: service_container(d).update(image=SERVICES_IMAGE + ":latest"),
        "api-access": lambda d: pod_of(d[docs.index(first("Deployment", "grafana"))]).update(automountServiceAccountToken=True),
        "rbac": lambda d: d.append({"kind": "ClusterRole", "metadata": {"name": "everything"}, "rules": []}),
    }
    problems = []
    if check(docs):
        problems.append("the render used for the self-test is not clean to begin with")
    for rule, plant in plants.items():
        broken = copy.deepcopy(docs)
        plant(broken)
        if not any(p.startswith(f"[{rule}]") for p in check(broken)):
            problems.append(f"a planted {rule} violation was NOT caught")
    if not any(p.startswith("[total]") for p in check(docs, total=True, values_text="# no total here\n")):
        problems.append("a values.yaml without the total was NOT caught")
    exempted = copy.deepcopy(docs)
    plants["containers"](exempted)
    target = next(x for x in exempted if x["kind"] == "Deployment" and x["metadata"]["name"] == "service-a")
    target["metadata"].setdefault("annotations", {})[EXEMPT + "containers"] = "because"
    if not any(p.startswith("[exemption]") for p in check(exempted)):
        problems.append("an exemption without a reason was NOT caught")
    target["metadata"]["annotations"][EXEMPT + "containers"] = "the image writes its config at start"
    if any(p.startswith("[containers]") or p.startswith("[exemption]") for p in check(exempted)):
        problems.append("a justified exemption was not honoured")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("render", type=Path)
    parser.add_argument("--total", action="store_true", help="also check values.yaml's stated total")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    docs = [d for d in yaml.safe_load_all(args.render.read_text()) if d]
    problems = self_test(docs) if args.self_test else check(docs, args.total)
    for p in problems:
        print(p)
    if not args.self_test and args.total:
        print(resource_total(docs))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
