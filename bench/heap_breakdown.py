#!/usr/bin/env python3
"""Heap at its peak by category, from a heaptrack profile of `isdown serve`.

Usage: python3 bench/heap_breakdown.py PROFILE.zst --monitors N [PROFILE2.zst ...]

Runs `heaptrack_print --flamegraph-cost-type peak` on each profile (the bytes each stack held
at the moment of the highest total) and puts every stack in the first category below whose
pattern occurs in it, top to bottom. Prints MiB and bytes per monitor per category, one column
pair per profile, as the Markdown rows of BENCHMARKS.md "Memory per monitor". Profiles come from
`bench/scale.py --heaptrack FILE` on a build without the jemalloc global allocator.
"""
import argparse
import subprocess
import sys
import tempfile

# (category, substrings of a stack's frames; any one matches). First match wins.
CATEGORIES = [
    ("`/metrics` being encoded (the bench's one scrape at the end)", ["prometheus_client::encoding"]),
    ("status page: badges", ["views::BADGES", "web::badge"]),
    ("status page: gzip + brotli copies of the cached views", ["gzip (rendered.rs)", "brotli (rendered.rs)"]),
    ("status page: the overview HTML", ["OverviewPage", "SummaryPage", "draw_overview"]),
    (
        "status page: `/api/v1/status`, Statuspage JSON, feed, history page",
        ["draw_status_v1", "draw_sp_", "draw_feed", "draw_history"],
    ),
    ("status page: the rest of the cached views", ["web::views", "(views.rs)", "web::rendered", "(rendered.rs)"]),
    ("status page: renderer inputs, per-monitor history kept between renders", ["web::renderer", "(renderer.rs)"]),
    ("health view (snapshots, rows)", ["monitor::health"]),
    ("scheduler: one task + channels per monitor", ["monitor::schedule"]),
    ("gateway: routes, targets, breakers, telemetry series", ["isdown::gateway"]),
    ("metrics: probe counters, latency histograms, state gauges", ["isdown::metrics", "prometheus_client"]),
    ("config: parsed providers and monitors", ["isdown::config", "MonitorSpec", "isdown::provider"]),
    ("alert routing, site info", ["isdown::alert", "web::site"]),
    ("SQLite, runtime, the rest", [""]),
]


def breakdown(profile):
    with tempfile.NamedTemporaryFile(suffix=".txt") as stacks:
        subprocess.run(
            ["heaptrack_print", profile, "--flamegraph-cost-type", "peak", "-F", stacks.name,
             "-p", "0", "-a", "0", "-T", "0", "-t", "0", "-l", "0"],
            check=True, stdout=subprocess.DEVNULL,
        )
        totals = [0] * len(CATEGORIES)
        for line in open(stacks.name, encoding="utf-8", errors="replace"):
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = next(i for i, (_, pats) in enumerate(CATEGORIES) if any(p in stack for p in pats))
            totals[n] += int(count)
        return totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", nargs="+")
    ap.add_argument("--monitors", type=int, required=True)
    a = ap.parse_args()
    columns = [breakdown(p) for p in a.profiles]
    mib = lambda b: f"{b / 1048576:,.1f}"
    per = lambda b: f"{b / a.monitors:,.0f}"
    for i, (name, _) in enumerate(CATEGORIES):
        cells = " | ".join(f"{mib(c[i])} | {per(c[i])}" for c in columns)
        print(f"| {name} | {cells} |")
    cells = " | ".join(f"**{mib(sum(c))}** | **{per(sum(c))}**" for c in columns)
    print(f"| **total heap at peak** | {cells} |")


if __name__ == "__main__":
    sys.exit(main())
