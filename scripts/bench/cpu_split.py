#!/usr/bin/env python3
"""Where a box's CPU goes while a wrk run drives a server: runs the wrk command given as
arguments, reads every process's CPU time from /proc (and the kernel's softirq, idle and
steal time from /proc/stat) over the middle of the run, and prints each process group's
share of the box and its CPU microseconds per request, at the rate wrk measured.

    cpu_split.py SERVER_PID... -- wrk -t2 -c64 -d12s -s bench.lua URL

SERVER_PID: the server's process ids (its processes and all their children count as the
server). Linux only. The figures are seconds of CPU, so they hold however loaded the box is,
but a busy box adds other processes' time to `other`. Shares overlap by a few percent:
softirq work done in a process's context is counted in both."""
import os
import re
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def processes():
    """pid -> (comm, parent pid, utime + stime in ticks, exited threads included)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[pid] = (comm, fields[1], int(fields[11]) + int(fields[12]))
    return out


def box():
    """user, nice, system, idle, iowait, irq, softirq, steal ticks of the whole box."""
    return [int(x) for x in open("/proc/stat").readline().split()[1:9]]


def seconds(text):
    value, unit = re.fullmatch(r"(\d+)([smh]?)", text).groups()
    return int(value) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]


def main():
    sep = sys.argv.index("--")
    servers, command = set(sys.argv[1:sep]), sys.argv[sep + 1:]
    duration = seconds(command[command.index("-d") + 1] if "-d" in command else
                       re.search(r"-d(\S+)", " ".join(command)).group(1))
    start, end = 2.0, max(duration - 1.0, 3.0)
    samples = {}

    def sample():
        time.sleep(start)
        samples["a"], samples["box_a"], samples["t_a"] = processes(), box(), time.time()
        time.sleep(end - start)
        samples["b"], samples["box_b"], samples["t_b"] = processes(), box(), time.time()

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    sampler.join()
    found = re.search(r"RESULT rps=([\d.]+)", out)
    if not found:
        sys.exit(f"cpu_split: no RESULT line from wrk:\n{out}")
    rps = float(found.group(1))

    a, b = samples["a"], samples["b"]

    def is_server(pid):
        seen = set()
        while pid in b and pid not in seen:
            if pid in servers:
                return True
            seen.add(pid)
            pid = b[pid][1]
        return False

    groups = {}
    for pid, (comm, _, ticks) in b.items():
        if is_server(pid):
            name = "the server"
        elif comm.startswith("postgres"):
            name = "postgres"
        elif comm == "wrk":
            name = "wrk"
        else:
            name = "other"
        # A process started inside the window counts from zero.
        groups[name] = groups.get(name, 0) + ticks - (a[pid][2] if pid in a else 0)
    span = samples["t_b"] - samples["t_a"]
    d = [y - x for x, y in zip(samples["box_a"], samples["box_b"])]
    total = sum(d)
    cores = os.cpu_count()
    print("| where | share of the box | CPU µs per request |")
    print("| --- | ---: | ---: |")
    rows = [(name, ticks / HZ / span / cores) for name, ticks in groups.items()]
    rows.sort(key=lambda row: -row[1])
    rows += [("kernel softirq (network)", d[6] / total), ("idle", (d[3] + d[4]) / total)]
    if d[7]:
        rows.append(("stolen by the hypervisor", d[7] / total))
    for name, share in rows:
        print(f"| {name} | {share:.0%} | {share * cores * 1e6 / rps:.0f} |")
    print(f"\n{rps:,.0f} requests/s over the whole run (the shares are of its middle, "
          f"{span:.0f} s); whole box: {cores} cores × 1e6 µs / rate = "
          f"{cores * 1e6 / rps:.0f} µs of CPU per request")


if __name__ == "__main__":
    main()
