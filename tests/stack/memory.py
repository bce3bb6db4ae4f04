"""Peak resident memory of every process the native stack runs, measured while the stack test
drives it: the figures a memory budget (docker-compose.yml's mem_limit) can rest on.

The processes come from the pid files scripts/dev-stack.sh and scripts/infra.sh write. A single
process's peak is its VmHWM (/proc/<pid>/status), which the kernel keeps exactly over the
process's life. Postgres is a postmaster forking a process per connection and per background
worker, so its figure is the peak of the RSS summed over the postmaster and its descendants,
sampled every SAMPLE_INTERVAL_S; that sum counts shared buffers once per process touching them,
so the summed PSS (each shared page split among its users) is kept next to it. Linux only;
standard library only, like the rest of the stack test."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from backends import SERVICES, STATE

SAMPLE_INTERVAL_S = 1.0
REPORT = STATE / "stack-test-memory.json"
PROC = Path("/proc")


@dataclass(frozen=True)
class Component:
    name: str
    pid_file: Path
    command: str        # a word of its command line, so a reused pid is not taken for it
    tree: bool = False  # sample the process and its descendants (Postgres)


# In docker-compose.yml's order of the budget; the sinks stand where Tempo and Loki run there.
COMPONENTS = [
    Component("postgres", STATE / "postgres.pid", "postgres", tree=True),
    Component("kafka", STATE / "kafka.pid", "kafka.Kafka"),
    Component("otel-collector", STATE / "observability" / "otel-collector.pid", "otelcol"),
    Component("tempo-sink", STATE / "observability" / "tempo.pid", "otlp-sink"),
    Component("loki-sink", STATE / "observability" / "loki.pid", "otlp-sink"),
    Component("prometheus", STATE / "observability" / "prometheus.pid", "prometheus"),
    Component("alertmanager", STATE / "observability" / "alertmanager.pid", "alertmanager"),
    Component("alert-webhook", STATE / "observability" / "alert-webhook.pid", "alert-webhook"),
    *(Component(name, STATE / "services" / f"{name}.pid", name)
      for name in [*SERVICES, "third-party-stub"]),
]
# Environment variables that bound a process's memory, recorded with its figure: the native
# stack does not set compose's (GOMEMLIMIT, the collector's OTEL_MEMORY_LIMIT_MIB).
LIMIT_VARS = ("GOMEMLIMIT", "GOGC", "OTEL_MEMORY_LIMIT_MIB")


def read_pid(path: Path) -> int | None:
    """The first line's digits, as the scripts' read_pid/pid_of take them."""
    try:
        digits = "".join(c for c in path.read_text().split("\n", 1)[0] if c.isdigit())
    except OSError:
        return None
    return int(digits) if digits else None


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def status_kib(pid: int, field: str) -> int | None:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM); None when the process is gone."""
    return _kib_line(PROC / str(pid) / "status", field)


def pss_kib(pid: int) -> int | None:
    return _kib_line(PROC / str(pid) / "smaps_rollup", "Pss")


def _kib_line(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def descendants(root: int) -> list[int]:
    """`root` and every process below it, from each process's parent in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def limits_of(pid: int) -> dict[str, str]:
    """The memory-bounding settings a process runs with: LIMIT_VARS from its environment and a
    JVM's -Xms/-Xmx. Only those names are read: the environment also holds credentials."""
    found = {}
    try:
        for item in (PROC / str(pid) / "environ").read_bytes().split(b"\0"):
            key, _, value = item.decode(errors="replace").partition("=")
            if key in LIMIT_VARS:
                found[key] = value
    except OSError:
        pass
    heap = [word for word in cmdline(pid).split() if word.startswith(("-Xms", "-Xmx"))]
    if heap:
        found["jvm_heap"] = " ".join(heap)
    return found


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


class MemorySampler:
    """Finds every component's pid when started, samples the process trees every
    SAMPLE_INTERVAL_S on a thread, and reads the single processes' VmHWM at the end."""

    def __init__(self):
        self.pids: dict[str, int | None] = {}
        self.problems: dict[str, str] = {}
        for c in COMPONENTS:
            pid = read_pid(c.pid_file)
            if pid is None:
                self.problems[c.name] = f"no pid in {c.pid_file}"
            elif c.command not in cmdline(pid):
                self.problems[c.name] = f"pid {pid} from {c.pid_file} is not {c.command}: {cmdline(pid)[:120]!r}"
                pid = None
            self.pids[c.name] = pid
        # name -> the sample with the largest RSS sum: rss_kib, pss_kib, processes.
        self.tree_peaks: dict[str, dict] = {}
        self.samples = 0
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_INTERVAL_S):
                return

    def sample(self) -> None:
        for c in COMPONENTS:
            root = self.pids[c.name]
            if not c.tree or root is None:
                continue
            rss = count = 0
            pss: int | None = 0
            for pid in descendants(root):
                kib = status_kib(pid, "VmRSS")
                if kib is None:
                    continue  # a backend that ended between the listing and the read
                rss, count = rss + kib, count + 1
                # smaps_rollup needs the right to trace the process: without it, no PSS at all.
                own = pss_kib(pid)
                pss = None if pss is None or own is None else pss + own
            peak = self.tree_peaks.get(c.name)
            if count and (peak is None or rss > peak["rss_kib"]):
                self.tree_peaks[c.name] = {"rss_kib": rss, "pss_kib": pss, "processes": count}
        self.samples += 1

    def report(self, load: list[dict], also: str) -> dict:
        """Stops sampling and returns the figures; `load` and `also` say what ran meanwhile."""
        self.stop()
        self.sample()  # the end state too
        components = {}
        for c in COMPONENTS:
            pid = self.pids[c.name]
            entry: dict = {"pid": pid, "peak_mib": None}
            if pid is not None and c.command not in cmdline(pid):
                self.problems[c.name] = f"pid {pid} exited during the test: its peak is lost"
            elif pid is not None:
                try:
                    entry["exe"] = os.readlink(PROC / str(pid) / "exe")
                except OSError:
                    pass
                entry["limits"] = limits_of(pid)
                if c.tree:
                    peak = self.tree_peaks.get(c.name, {})
                    entry.update({"peak_mib": mib(peak.get("rss_kib")),
                                  "how": f"peak over {self.samples} samples of the RSS summed "
                                         "over the postmaster and its descendants",
                                  "processes_at_peak": peak.get("processes"),
                                  "pss_at_peak_mib": mib(peak.get("pss_kib"))})
                else:
                    entry.update({"peak_mib": mib(status_kib(pid, "VmHWM")), "how": "VmHWM",
                                  "rss_at_end_mib": mib(status_kib(pid, "VmRSS"))})
            if c.name in self.problems:
                entry["problem"] = self.problems[c.name]
            components[c.name] = entry
        measured = [e["peak_mib"] for e in components.values() if e["peak_mib"]]
        return {
            "what": "peak resident memory of each process of the native stack "
                    "(scripts/dev-stack.sh up --observability) during the stack test (tests/stack)",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(time.time() - self.started, 1),
            "sample_interval_s": SAMPLE_INTERVAL_S,
            "samples": self.samples,
            "cargo_profile": os.environ.get("CARGO_PROFILE", "dev"),
            "load": load,
            "also": also,
            "components": components,
            "sum_of_peaks_mib": round(sum(measured), 1),
        }


def write(report: dict, path: Path = REPORT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def table(report: dict) -> str:
    """The report as text: one row per component, then the load it was measured under."""
    rows = [f"{'component':<18}{'pid':>8}{'peak MiB':>10}  how"]
    for name, e in report["components"].items():
        peak = "-" if e["peak_mib"] is None else f"{e['peak_mib']:.1f}"
        how = e.get("problem") or e.get("how", "")
        if e.get("processes_at_peak"):
            how = f"RSS sum of {e['processes_at_peak']} processes (PSS {e['pss_at_peak_mib'] or '?'} MiB)"
        if e.get("limits"):
            how += "; " + ", ".join(f"{k}={v}" for k, v in e["limits"].items())
        rows.append(f"{name:<18}{e['pid'] or '-':>8}{peak:>10}  {how}")
    rows.append(f"{'sum of peaks':<18}{'':>8}{report['sum_of_peaks_mib']:>10.1f}")
    rows.append(f"over {report['duration_s']:.0f} s ({report['samples']} samples), "
                f"services built with the {report['cargo_profile']} profile, under:")
    for run in report["load"]:
        settings = " ".join(f"{k}={v}" for k, v in run["settings"].items()) or "defaults"
        rows.append(f"  load {run['scenario']:<6} {settings}: {run['requests']} requests in "
                    f"{run['duration_s']} s ({run['requests_per_s']}/s)")
    rows.append(f"  then {report['also']}")
    return "\n".join(rows)
