"""Summarises a raw file written by bench/run_echo.sh as Markdown tables.

usage: python3 bench/summarize_echo.py bench/out/echo_<time>.txt

Throughput: per server, the median of the rounds (min–max in brackets) and
the median of the per-round ratios against the C server measured in the
same round (pairing rounds cancels much of the machine's noise).
Server CPU is the server process's own (xinetd, socat and ncat fork a child
per connection, which is not counted, so they show "–").
Memory: RSS added by the idle connections, median (min–max).
"""

import statistics
import sys
from collections import defaultdict

SMALL_TARGET = 0.8  # × the C server's round trips/s
LARGE_P99_US = 5000
MEMORY_KIB = 16 * 1024
FORKING = {"xinetd", "socat", "ncat"}  # their per-connection children are not measured


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or "=" not in line:
                continue
            row = {}
            for field in line.split():
                key, _, value = field.partition("=")
                try:
                    row[key] = float(value)
                except ValueError:
                    row[key] = value
            rows.append(row)
    return rows


def spread(values, fmt="{:,.0f}"):
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def throughput(rows, scenario):
    rows = [r for r in rows if r["scenario"] == scenario]
    if not rows:
        return
    first = rows[0]
    print(f"### {scenario}: {int(first['conns'])} connections × {int(first['size'])} B, "
          f"{first['secs']:g} s per run, {int(max(r['round'] for r in rows))} rounds\n")
    by_server = defaultdict(list)
    c_by_round = {r["round"]: r["rt_per_s"] for r in rows if r["server"] == "c"}
    for r in rows:
        by_server[r["server"]].append(r)
    print("| server | round trips/s median (min–max) | × C (median of per-round ratios) "
          "| MB/s | p50 µs | p99 µs median (worst) | server CPU % | server CPU µs per round trip "
          "| per-round round trips/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for server, runs in by_server.items():
        rts = [r["rt_per_s"] for r in runs]
        ratios = [r["rt_per_s"] / c_by_round[r["round"]] for r in runs if r["round"] in c_by_round]
        ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else "–"
        p99s = [r["p99_us"] for r in runs]
        cpu_pct = cpu_rt = "–"
        if server not in FORKING and "server_cpu_pct" in runs[0]:
            cpu_pct = f"{statistics.median(r['server_cpu_pct'] for r in runs):.0f}"
            cpu_rt = f"{statistics.median(r['server_us_per_rt'] for r in runs):.2f}"
        print(f"| {server} | {spread(rts)} | {ratio} | {statistics.median(r['mb_per_s'] for r in runs):,.1f} "
              f"| {statistics.median(r['p50_us'] for r in runs):,.0f} "
              f"| {statistics.median(p99s):,.0f} ({max(p99s):,.0f}) "
              f"| {cpu_pct} | {cpu_rt} "
              f"| {', '.join(f'{v:,.0f}' for v in rts)} |")
    sb = by_server.get("switchboard")
    if sb and scenario == "small" and c_by_round:
        ratios = [r["rt_per_s"] / c_by_round[r["round"]] for r in sb if r["round"] in c_by_round]
        med = statistics.median(ratios)
        verdict = "met" if med >= SMALL_TARGET else "MISSED"
        print(f"\nTarget ≥ {SMALL_TARGET}× C: switchboard {med:.2f}× — {verdict}")
    if sb and scenario == "large":
        worst = max(r["p99_us"] for r in sb)
        verdict = "met" if worst < LARGE_P99_US else "MISSED"
        print(f"\nTarget p99 < {LARGE_P99_US / 1000:g} ms: switchboard worst round "
              f"{worst / 1000:.2f} ms — {verdict}")
    print()


def memory(rows):
    rows = [r for r in rows if r["scenario"] == "memory"]
    if not rows:
        return
    print(f"### memory: {int(rows[0]['conns'])} idle connections (one {int(rows[0]['size'])} B "
          "round trip each), RSS added\n")
    print("| server | RSS before (KiB) | added KiB median (min–max) | bytes per connection "
          "| after closing them (KiB) | per-round added KiB |")
    print("|---|---|---|---|---|---|")
    by_server = defaultdict(list)
    for r in rows:
        by_server[r["server"]].append(r)
    for server, runs in by_server.items():
        added = [r["added_kib"] for r in runs]
        print(f"| {server} | {statistics.median(r['rss_before_kib'] for r in runs):,.0f} "
              f"| {spread(added)} | {statistics.median(r['added_per_conn_b'] for r in runs):,.0f} "
              f"| {statistics.median(r['rss_closed_kib'] for r in runs):,.0f} "
              f"| {', '.join(f'{v:,.0f}' for v in added)} |")
    sb = by_server.get("switchboard")
    if sb:
        worst = max(r["added_kib"] for r in sb)
        verdict = "met" if worst <= MEMORY_KIB else "MISSED"
        print(f"\nTarget ≤ 16 MiB added: switchboard worst round {worst / 1024:.1f} MiB — {verdict}")
    print()


def main():
    rows = parse(sys.argv[1])
    throughput(rows, "small")
    throughput(rows, "large")
    memory(rows)


main()
