#!/usr/bin/env python3
"""Scale benchmark of `isdown serve`: N monitors at a 30 s interval against local mock providers.

Measures, for the serve process only: CPU use (utime+stime over wall time), peak memory
(VmHWM), database growth per monitor per day (file growth over the measured window, scaled to a
day), and scheduling lateness (p50/p99 from isdown's own `isdown_schedule_lateness_seconds`
histogram). Everything runs on 127.0.0.1; the run is bounded by --duration.

Usage: python3 bench/scale.py [--monitors 10000] [--duration 300] [--warmup 60] [--mocks 4]
                              [--bin PATH] [--trace] [--database-url postgres://…]
(builds target/release/isdown first unless --bin names another binary; --trace prints the
resident memory every 5 s; --database-url runs on that store through `ISDOWN_DATABASE_URL`
instead of the SQLite file under the data directory, and then no database growth is reported
(it would be PostgreSQL's files, not this process's); see BENCHMARKS.md for results).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "isdown")
TICK = os.sysconf("SC_CLK_TCK")


def start(args, **kw):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kw)
    banner = proc.stdout.readline()
    url = next(w for w in banner.split() if w.startswith("http://"))
    return proc, url


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def db_bytes(data):
    return sum(
        os.path.getsize(os.path.join(data, f))
        for f in os.listdir(data)
        if f.startswith("isdown.db")
    )


def histogram(metrics, name):
    """(upper bound, cumulative count) pairs of a Prometheus histogram."""
    rows = []
    for m in re.finditer(name + r'_bucket\{le="([^"]+)"\} (\d+)', metrics):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        rows.append((le, int(m.group(2))))
    return sorted(rows)


def quantile(rows, q):
    total = rows[-1][1] if rows else 0
    if not total:
        return None
    prev_le, prev_n = 0.0, 0
    for le, n in rows:
        if n >= q * total:
            if le == float("inf"):
                return prev_le
            # linear inside the bucket
            return prev_le + (le - prev_le) * ((q * total - prev_n) / max(n - prev_n, 1))
        prev_le, prev_n = le, n
    return prev_le


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitors", type=int, default=10_000)
    ap.add_argument("--duration", type=int, default=300, help="measured seconds after warmup")
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--mocks", type=int, default=4)
    ap.add_argument("--probe", default="chat")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="the isdown binary to measure (default: a fresh release build)")
    ap.add_argument("--trace", action="store_true", help="print VmRSS every 5 s")
    ap.add_argument("--database-url", help="the store to use (ISDOWN_DATABASE_URL); default SQLite")
    a = ap.parse_args()

    global BIN
    if a.bin:
        BIN = os.path.abspath(a.bin)
    elif not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="isdown-bench-")
    data = os.path.join(work, "data")
    mocks = [
        start([BIN, "mock-provider", "--listen", "127.0.0.1:0", "--style", "kimi"])
        for _ in range(a.mocks)
    ]
    cfg = os.path.join(work, "isdown.toml")
    with open(cfg, "w") as f:
        f.write('[monitor]\ninterval = "30s"\ntimeout = "10s"\n')
        for i in range(a.monitors):
            url = mocks[i % len(mocks)][1]
            f.write(
                f'[providers.p{i}]\nbase_url = "{url}/v1"\napi_key_env = "BENCH_KEY"\n'
                f'probe_model = "kimi-k2.6"\n'
                f'[[monitors]]\nprovider = "p{i}"\nprobes = ["{a.probe}"]\n'
            )
    env = dict(os.environ, BENCH_KEY="sk-bench-not-a-real-key-000000")
    env.pop("ISDOWN_DATABASE_URL", None)
    if a.database_url:
        env["ISDOWN_DATABASE_URL"] = a.database_url
    sqlite = not a.database_url
    serve, url = start(
        [BIN, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data", data], env=env
    )
    started = time.monotonic()

    def wait(seconds):
        """Sleeps, printing the resident memory every 5 s when tracing."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(5, left))
            if a.trace:
                print(
                    f"t={time.monotonic() - started:5.0f} s  "
                    f"VmRSS {status_kb(serve.pid, 'VmRSS') / 1024:7.1f} MiB  "
                    f"VmHWM {status_kb(serve.pid, 'VmHWM') / 1024:7.1f} MiB",
                    flush=True,
                )

    try:
        wait(a.warmup)
        cpu0, t0, db0 = cpu_seconds(serve.pid), time.monotonic(), sqlite and db_bytes(data)
        wait(a.duration)
        cpu1, t1, db1 = cpu_seconds(serve.pid), time.monotonic(), sqlite and db_bytes(data)
        peak_kb = status_kb(serve.pid, "VmHWM")
        rss_kb = status_kb(serve.pid, "VmRSS")
        metrics = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        for proc, _ in mocks:
            proc.kill()
    lateness = histogram(metrics, "isdown_schedule_lateness_seconds")
    probes = sum(int(n) for n in re.findall(r"^isdown_probes_total\{[^}]*\} (\d+)", metrics, re.M))
    wall = t1 - t0
    growth = db1 - db0
    print(f"monitors                 {a.monitors} ({a.probe}, 30 s interval, {a.mocks} mock providers)")
    print(f"measured                 {wall:.0f} s after {a.warmup} s warm-up; {probes} probes in total")
    print(f"cpu                      {100 * (cpu1 - cpu0) / wall:.1f} % of one core")
    print(f"peak memory (VmHWM)      {peak_kb / 1024:.1f} MiB (RSS at end {rss_kb / 1024:.1f} MiB)")
    if sqlite:
        print(f"database                 {db1 / 1e6:.1f} MB at end; grew {growth / 1e6:.2f} MB in {wall:.0f} s")
        print(f"db growth per monitor    {growth / a.monitors * 86400 / wall / 1024:.1f} KiB/day")
    else:
        print("database                 PostgreSQL (growth not measured here)")
    p50, p99 = quantile(lateness, 0.5), quantile(lateness, 0.99)
    print(f"scheduling lateness      p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms (histogram interpolation)")
    total = lateness[-1][1] if lateness else 0
    over = [(le, total - n) for le, n in lateness if le in (0.1, 1.0, 5.0)]
    print("late probes              " + ", ".join(f"> {le:g} s: {n}" for le, n in over) + f" of {total}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
