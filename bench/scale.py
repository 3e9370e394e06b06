#!/usr/bin/env python3
"""Scale benchmark of `isdown serve`: N monitors at a 30 s interval against local mock providers.

Measures, for the serve process only: CPU use (utime+stime over wall time), peak memory
(VmHWM), database growth per monitor per day (file growth over the measured window, scaled to a
day), and scheduling lateness (p50/p99 from isdown's own `isdown_schedule_lateness_seconds`
histogram). Everything runs on 127.0.0.1; the run is bounded by --duration.

Usage: python3 bench/scale.py [--monitors 10000] [--duration 300] [--warmup 60] [--mocks 4]
                              [--bin PATH] [--trace] [--database-url postgres://… [--instances 2]]
                              [--heaptrack FILE]
(builds target/release/isdown first unless --bin names another binary; --trace prints the
resident memory every 5 s; --database-url runs on that store through `ISDOWN_DATABASE_URL`
instead of the SQLite file under the data directory: database growth is then
`pg_database_size` (read with psql), and the CPU of the PostgreSQL server's processes is
measured too; --instances N starts N `serve` on that one database, which share the monitors by
lease, and reports each; --heaptrack runs the (first) serve process under heaptrack, writing
its profile to FILE.zst for heaptrack_print — build without the jemalloc global allocator, or
heaptrack sees none of Rust's allocations; see BENCHMARKS.md for results).
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
    # The banner is the first line with the URL (heaptrack writes its own lines before it).
    while True:
        banner = proc.stdout.readline()
        if not banner:
            sys.exit(f"{args[0]} exited before printing its URL")
        url = next((w for w in banner.split() if w.startswith("http://")), None)
        if url:
            return proc, url


class Traced:
    """The isdown process that heaptrack's script runs as its child: what is measured and
    stopped (a SIGTERM to the script would leave isdown running and the profile unfinished)."""

    def __init__(self, script):
        self.script = script
        children = open(f"/proc/{script.pid}/task/{script.pid}/children").read().split()
        self.pid = next(
            int(c) for c in children if os.path.realpath(f"/proc/{c}/exe") == os.path.realpath(BIN)
        )

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=None):
        return self.script.wait(timeout=timeout)

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)


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


def postgres_cpu_seconds():
    """utime+stime of every process named postgres (the server and its backends)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name.startswith("postgres"):
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def pg_size(url):
    out = subprocess.run(
        ["psql", url, "-Atc", "SELECT pg_database_size(current_database())"],
        capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip())


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
    ap.add_argument("--instances", type=int, default=1, help="serve processes on --database-url")
    ap.add_argument("--heaptrack", metavar="FILE", help="profile the serve process's heap into FILE.zst")
    a = ap.parse_args()
    if a.instances > 1 and not a.database_url:
        ap.error("--instances needs --database-url (several instances share a PostgreSQL)")

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
    servers = []
    for i in range(a.instances):
        env_i = dict(env, ISDOWN_INSTANCE=f"bench-{i}")
        command = [BIN, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data", f"{data}-{i}"]
        if a.heaptrack and i == 0:
            script, url = start(["heaptrack", "-o", a.heaptrack] + command, env=env_i)
            servers.append((Traced(script), url))
        else:
            servers.append(start(command, env=env_i))
    serve, url = servers[0]
    data = f"{data}-0"
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

    size = (lambda: db_bytes(data)) if sqlite else (lambda: pg_size(a.database_url))
    try:
        wait(a.warmup)
        cpus0 = [cpu_seconds(p.pid) for p, _ in servers]
        pg0 = postgres_cpu_seconds()
        t0, db0 = time.monotonic(), size()
        wait(a.duration)
        cpus1 = [cpu_seconds(p.pid) for p, _ in servers]
        pg1 = postgres_cpu_seconds()
        t1, db1 = time.monotonic(), size()
        peaks = [status_kb(p.pid, "VmHWM") for p, _ in servers]
        rsss = [status_kb(p.pid, "VmRSS") for p, _ in servers]
        all_metrics = [
            urllib.request.urlopen(u + "/metrics", timeout=30).read().decode() for _, u in servers
        ]
        # The scrape is read after the peak above: whatever it holds shows here.
        scraped_peak_kb = status_kb(servers[0][0].pid, "VmHWM")
    finally:
        stopping = time.monotonic()
        for proc, _ in servers:
            proc.send_signal(signal.SIGTERM)
        stops = []
        for proc, _ in servers:
            try:
                proc.wait(timeout=max(1, 180 - (time.monotonic() - stopping)))
                stops.append(f"{time.monotonic() - stopping:.0f} s")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stops.append("killed after 180 s")
        for proc, _ in mocks:
            proc.kill()
    cpu0, cpu1, peak_kb, rss_kb, metrics = cpus0[0], cpus1[0], peaks[0], rsss[0], all_metrics[0]
    lateness = histogram(metrics, "isdown_schedule_lateness_seconds")
    probes = sum(int(n) for n in re.findall(r"^isdown_probes_total\{[^}]*\} (\d+)", metrics, re.M))
    wall = t1 - t0
    growth = db1 - db0
    print(f"monitors                 {a.monitors} ({a.probe}, 30 s interval, {a.mocks} mock providers)")
    print(f"measured                 {wall:.0f} s after {a.warmup} s warm-up; {probes} probes in total")
    print(f"cpu                      {100 * (cpu1 - cpu0) / wall:.1f} % of one core")
    print(f"peak memory (VmHWM)      {peak_kb / 1024:.1f} MiB (RSS at end {rss_kb / 1024:.1f} MiB)")
    print(f"graceful stop (SIGTERM)  {', '.join(stops)}")
    print(f"/metrics text            {len(metrics.encode()) / 1e6:.1f} MB ({len(metrics.encode()) / a.monitors:.0f} B per monitor)")
    print(f"peak with the scrape     {scraped_peak_kb / 1024:.1f} MiB (VmHWM after one /metrics scrape)")
    if a.instances > 1:
        for i in range(a.instances):
            late = histogram(all_metrics[i], "isdown_schedule_lateness_seconds")
            held = re.search(r'isdown_leases_held\{lease="monitors"\} (\d+)', all_metrics[i])
            mine = sum(
                int(n) for n in re.findall(r"^isdown_probes_total\{[^}]*\} (\d+)", all_metrics[i], re.M)
            )
            p99 = quantile(late, 0.99)
            print(
                f"instance {i}               cpu {100 * (cpus1[i] - cpus0[i]) / wall:.1f} % of one core, "
                f"peak {peaks[i] / 1024:.1f} MiB, monitors held {held.group(1) if held else '?'}, "
                f"probes {mine}, lateness p99 {p99 * 1000 if p99 is not None else float('nan'):.2f} ms"
            )
        probes = sum(
            int(n)
            for m in all_metrics
            for n in re.findall(r"^isdown_probes_total\{[^}]*\} (\d+)", m, re.M)
        )
        print(f"all instances            {probes} probes in total")
    if not sqlite:
        print(f"postgresql cpu           {100 * (pg1 - pg0) / wall:.1f} % of one core")
    label = "SQLite file" if sqlite else "pg_database_size"
    print(f"database                 {db1 / 1e6:.1f} MB at end ({label}); grew {growth / 1e6:.2f} MB in {wall:.0f} s")
    print(f"db growth per monitor    {growth / a.monitors * 86400 / wall / 1024:.1f} KiB/day")
    p50, p99 = quantile(lateness, 0.5), quantile(lateness, 0.99)
    print(f"scheduling lateness      p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms (histogram interpolation)")
    total = lateness[-1][1] if lateness else 0
    over = [(le, total - n) for le, n in lateness if le in (0.1, 1.0, 5.0)]
    print("late probes              " + ", ".join(f"> {le:g} s: {n}" for le, n in over) + f" of {total}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
