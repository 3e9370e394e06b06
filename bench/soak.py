#!/usr/bin/env python3
"""Soak benchmark of `isdown serve`: the gateway under a steady 1,000 requests/s and 10,000
monitors at a 30 s interval, together, for 30 minutes — does memory or the number of open file
descriptors grow while nothing else changes?

One `serve` process runs the monitors (each probing one of a few local mock providers) and a
gateway route to another mock; wrk sends paced chat requests through the gateway for the whole
run (32 connections, each waiting 32 ms after an answer, about 1,000 requests/s in all). Every
--sample seconds the serve process's resident memory (VmRSS) and open descriptors
(/proc/PID/fd) are read. The verdict compares the last third of the run with the middle third:
after start-up and warm-up, a process that does not leak stays flat.

Everything runs on 127.0.0.1. Usage:
  python3 bench/soak.py [--duration 1800] [--monitors 10000] [--rate-delay-ms 32] [--no-build]
(builds target/release/isdown first; results in BENCHMARKS.md).
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "isdown")
KEY = "sk-bench-not-a-real-key-000000"
BODY = '{"model":"bench","messages":[{"role":"user","content":"Say hi."}],"max_tokens":16}'


def start(args, **kw):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kw)
    banner = proc.stdout.readline()
    url = next(w for w in banner.split() if w.startswith("http://"))
    # Keep draining stdout so that a chatty process never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, url


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def sqlite_kib(pid):
    """SQLite's own heap (page caches of every connection, statements, schema), read from the
    running process by calling `sqlite3_memory_used()` through gdb: SQLite allocates with the C
    allocator, outside jemalloc, and its page caches fill up to their configured size as the
    database grows — growth that is bounded but looks like a leak in RSS alone. None when gdb
    is missing or the call fails (the column then reads "-")."""
    if shutil.which("gdb") is None:
        return None
    try:
        out = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-ex",
             "print ((long long (*)(void))sqlite3_memory_used)()"],
            capture_output=True, text=True, timeout=60).stdout
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"^\$1 = (\d+)", out, re.M)
    return int(m.group(1)) // 1024 if m else None


def write_config(path, mocks, gateway_mock, monitors):
    with open(path, "w") as f:
        f.write('[monitor]\ninterval = "30s"\ntimeout = "10s"\n')
        f.write("[gateway]\nopen_on_localhost = true\n")
        f.write(
            f'[providers.up]\nbase_url = "{gateway_mock}/v1"\napi_key_env = "BENCH_KEY"\n'
            'probe_model = "bench"\n'
            '[[monitors]]\nprovider = "up"\nprobes = ["chat"]\n'
            '[[routes]]\nmodel = "bench"\ntargets = [{ provider = "up" }]\n'
        )
        for i in range(monitors):
            url = mocks[i % len(mocks)]
            f.write(
                f'[providers.p{i}]\nbase_url = "{url}/v1"\napi_key_env = "BENCH_KEY"\n'
                'probe_model = "kimi-k2.6"\n'
                f'[[monitors]]\nprovider = "p{i}"\nprobes = ["chat"]\n'
            )


def wrk(url, seconds, connections, delay_ms, work):
    script = os.path.join(work, "soak.lua")
    with open(script, "w") as f:
        f.write(
            f"wrk.method = 'POST'\nwrk.body = '{BODY}'\n"
            "wrk.headers['Content-Type'] = 'application/json'\n"
            f"function delay() return {delay_ms} end\n"
        )
    args = ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "30s", "-s", script, url + "/v1/chat/completions"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=1800, help="seconds of load")
    ap.add_argument("--monitors", type=int, default=10_000)
    ap.add_argument("--mocks", type=int, default=3, help="mock providers for the monitors")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate-delay-ms", type=int, default=32,
                    help="each connection's pause after an answer (32 connections x 32 ms ≈ 1,000/s)")
    ap.add_argument("--sample", type=int, default=30, help="seconds between samples")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()

    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="isdown-soak-")
    procs = []
    try:
        mocks = []
        for _ in range(a.mocks):
            proc, url = start([BIN, "mock-provider", "--listen", "127.0.0.1:0", "--style", "kimi"])
            procs.append(proc)
            mocks.append(url)
        gw_mock, gw_mock_url = start([BIN, "mock-provider", "--listen", "127.0.0.1:0",
                                      "--style", "openai", "--scenario", "ok"])
        procs.append(gw_mock)
        cfg = os.path.join(work, "isdown.toml")
        write_config(cfg, mocks, gw_mock_url, a.monitors)
        env = dict(os.environ, BENCH_KEY=KEY, RUST_LOG="warn")
        serve, url = start([BIN, "serve", "--config", cfg, "--listen", "127.0.0.1:0",
                            "--data", os.path.join(work, "data")], env=env)
        procs.append(serve)
        load = wrk(url, a.duration, a.connections, a.rate_delay_ms, work)
        samples = []  # (seconds since the load started, RSS KiB, fds, SQLite KiB or None)
        t0 = time.monotonic()
        print(f"{'t (s)':>7} {'RSS (MiB)':>10} {'fds':>6} {'SQLite (MiB)':>13} {'RSS-SQLite':>11}",
              flush=True)
        while load.poll() is None:
            t = time.monotonic() - t0
            sample = (t, rss_kib(serve.pid), fds(serve.pid), sqlite_kib(serve.pid))
            samples.append(sample)
            sq = "-" if sample[3] is None else f"{sample[3] / 1024:.1f}"
            rest = "-" if sample[3] is None else f"{(sample[1] - sample[3]) / 1024:.1f}"
            print(f"{t:7.0f} {sample[1] / 1024:10.1f} {sample[2]:6d} {sq:>13} {rest:>11}",
                  flush=True)
            # Sleep to the next sample, or less when the load ends first.
            try:
                load.wait(timeout=a.sample)
            except subprocess.TimeoutExpired:
                pass
        out = load.stdout.read()
        samples.append((time.monotonic() - t0, rss_kib(serve.pid), fds(serve.pid),
                        sqlite_kib(serve.pid)))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    third = len(samples) // 3
    middle, last = samples[third:2 * third], samples[2 * third:]

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    print()
    print(f"load                     {total.group(1) if total else '?'} requests, "
          f"{rate.group(1) if rate else '?'} req/s, p50 {pct.get('50')}, p99 {pct.get('99')}, "
          f"non-2xx {non2xx.group(1) if non2xx else 0}, socket errors: {errors.group(1) if errors else 'none'}")
    print(f"monitors                 {a.monitors + 1} (chat probe, 30 s)")
    print(f"RSS  start/peak/end      {samples[0][1] / 1024:.1f} / {max(s[1] for s in samples) / 1024:.1f}"
          f" / {samples[-1][1] / 1024:.1f} MiB")
    print(f"RSS  median middle third {med(middle, 1) / 1024:.1f} MiB, last third {med(last, 1) / 1024:.1f} MiB "
          f"({100 * (med(last, 1) / med(middle, 1) - 1):+.1f} %)")
    if all(s[3] is not None for s in samples):
        rest = [(s[0], s[1] - s[3]) for s in samples]
        print(f"SQLite heap start/peak/end {samples[0][3] / 1024:.1f} / "
              f"{max(s[3] for s in samples) / 1024:.1f} / {samples[-1][3] / 1024:.1f} MiB")
        print(f"RSS-SQLite median middle {statistics.median(r[1] for r in rest[third:2 * third]) / 1024:.1f}"
              f" MiB, last third {statistics.median(r[1] for r in rest[2 * third:]) / 1024:.1f} MiB")
    print(f"fds  start/peak/end      {samples[0][2]} / {max(s[2] for s in samples)} / {samples[-1][2]}")
    print(f"fds  median middle third {med(middle, 2):.0f}, last third {med(last, 2):.0f}")


if __name__ == "__main__":
    sys.exit(main())
