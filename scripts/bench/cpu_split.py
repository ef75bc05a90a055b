#!/usr/bin/env python3
"""Where a box's CPU goes while a wrk run drives a server: runs the wrk command given as
arguments, reads every task's CPU time from /proc (and the kernel's softirq and idle time
from /proc/stat) over the middle of the run, and prints each process group's share of the
box and its CPU microseconds per request (wrk's RESULT line gives the rate).

    cpu_split.py SERVER_COMM_PREFIX... -- wrk -t2 -c64 -d12s -s bench.lua URL

Linux only. The figures are seconds of CPU, so they hold however loaded the box is, but a
busy box adds other processes' time to `other`. Shares overlap by a few percent: softirq
work done in a process's context is counted in both."""
import os
import re
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def tasks():
    """(pid, tid) -> (comm of the process, utime + stime in ticks)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                fields = stat[stat.rindex(")") + 2:].split()
                out[(pid, tid)] = (comm, int(fields[11]) + int(fields[12]))
        except OSError:
            continue
    return out


def box():
    """user, nice, system, idle, iowait, irq, softirq ticks of the whole box."""
    return [int(x) for x in open("/proc/stat").readline().split()[1:8]]


def main():
    sep = sys.argv.index("--")
    servers, command = sys.argv[1:sep], sys.argv[sep + 1:]
    duration = float(re.search(r"-d\s*(\d+)", " ".join(command)).group(1))
    window = (2.0, max(duration - 1.0, 3.0))
    samples = {}

    def sample():
        time.sleep(window[0])
        samples["a"], samples["box_a"], samples["t_a"] = tasks(), box(), time.time()
        time.sleep(window[1] - window[0])
        samples["b"], samples["box_b"], samples["t_b"] = tasks(), box(), time.time()

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    sampler.join()
    rps = float(re.search(r"RESULT rps=([\d.]+)", out).group(1))

    a, b = samples["a"], samples["b"]
    groups = {}
    for key, (comm, ticks) in b.items():
        if key not in a:
            continue  # started inside the window: not comparable
        name = next((s for s in servers if comm.startswith(s)), None)
        if name is None:
            name = "postgres" if comm.startswith("postgres") else "wrk" if comm == "wrk" else "other"
        groups[name] = groups.get(name, 0) + ticks - a[key][1]
    seconds = samples["t_b"] - samples["t_a"]
    d = [y - x for x, y in zip(samples["box_a"], samples["box_b"])]
    total = sum(d)
    cores = os.cpu_count()
    print(f"| where | share of the box | CPU µs per request |")
    print(f"| --- | ---: | ---: |")
    for name, ticks in sorted(groups.items(), key=lambda kv: -kv[1]):
        if name.startswith("kernel"):
            continue
        share = ticks / HZ / seconds / cores
        print(f"| {name} | {share:.0%} | {share * cores * 1e6 / rps:.0f} |")
    for name, ticks in (("kernel softirq (network)", d[6]), ("idle", d[3] + d[4])):
        share = ticks / total
        print(f"| {name} | {share:.0%} | {share * cores * 1e6 / rps:.0f} |")
    print(f"\n{rps:,.0f} requests/s over the run; whole box: {cores} cores × 1e6 µs / rate = "
          f"{cores * 1e6 / rps:.0f} µs of CPU per request")


if __name__ == "__main__":
    main()
