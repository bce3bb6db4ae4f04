#!/usr/bin/env python3
"""CPU time of every process on the machine, summed by command name (from /proc/*/stat).

    proc_cpu.py                  prints a snapshot (JSON: pid -> [comm, ticks])
    proc_cpu.py --since SNAP     prints the CPU seconds each command used since SNAP, largest
                                 first (processes that exited in between are not counted)

scripts/bench.sh uses it to name where the CPU goes at the stack's capacity.
"""
import json
import os
import sys


def snapshot():
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[pid] = [comm, int(fields[11]) + int(fields[12])]
    return procs


def main():
    now = snapshot()
    if len(sys.argv) == 3 and sys.argv[1] == "--since":
        before = json.loads(sys.argv[2])
        tck = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid, (comm, ticks) in now.items():
            # A pid seen before only counts what it used since; a new one all it used.
            earlier = before.get(pid)
            base = earlier[1] if earlier and earlier[0] == comm else 0
            used[comm] = used.get(comm, 0) + (ticks - base) / tck
        top = sorted(((round(s, 2), c) for c, s in used.items() if s > 0), reverse=True)
        print(json.dumps({"kind": "cpu", "cpu_seconds": [[c, s] for s, c in top[:12]]}))
    else:
        print(json.dumps(now))


if __name__ == "__main__":
    main()
