#!/usr/bin/env python3
"""Status page benchmark: 200 monitors, everyone refreshing the page at once.

In one run, on this machine, against one `isdown serve` (release build):
- 200 providers with one `chat` monitor each, spread over two `isdown mock-provider` processes:
  one healthy (`ok`) and, for --down of them (default 20), one failing (`unavailable`), so the
  page shows a live outage (banner, red rows, open incidents) as it would on a bad day;
- 90 days of history seeded into the database before the measured start (day and hour
  rollups, and closed incidents, written with the schema of migrations/sqlite/, a fixed
  random seed): most days up, some degraded, a few with an outage, younger monitors with days of
  no data. Without history every day of every bar would be the same "no data" and the page would
  compress far better than a real one;
- the bytes of `/` on the wire (headers + body) with and without `Accept-Encoding: gzip` and
  with `br`, read with a stdlib client;
- a flood: `wrk` with --connections (64) connections for --duration seconds, `Accept-Encoding:
  gzip`, on `/`, `/api/v1/status`, `/api/v2/summary.json` and `/healthz`, one after another,
  --repeat times (medians quoted): requests/s, latency, bytes read per request;
- probe lateness during each flood: the delta of isdown's own `isdown_schedule_lateness_seconds`
  histogram (start of a probe minus its scheduled instant) over the flood, p50/p99 interpolated
  inside buckets, next to the same measure over an idle window of the same length;
- memory: RSS of `serve` before and after the floods, and its peak (VmHWM).

Monitors probe every --interval (default 10 s: 20 probes/s, so each flood window holds a few
hundred probes for the lateness percentiles). Everything runs on 127.0.0.1 and stops by itself.
Needs `wrk` (Debian: `apt-get install wrk`).

Usage: python3 bench/status_page.py [--monitors 200] [--duration 15] [--repeat 3]
       [--connections 64] [--interval 10s] [--no-build] [--bin PATH]
Prints a Markdown table and writes the raw figures to target/bench/status_page.json.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "isdown")
OUT = os.path.join(ROOT, "target", "bench", "status_page.json")
KEY = "sk-bench-not-a-real-key-000000"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
PATHS = ["/", "/api/v1/status", "/api/v2/summary.json", "/healthz"]

# Every process started here, killed on any exit (normal, exception, Ctrl-C, SIGTERM).
STARTED = []


def cleanup():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc in reversed(STARTED):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    STARTED.clear()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(args, log, **kw):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, **kw)
    STARTED.append(proc)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{args[1]} exited before printing its address (rc {proc.wait()}); see {log}")
    url = next(w for w in line.split() if w.startswith("http://")).rstrip("/,")
    # Drain stdout so a chatty process never blocks on a full pipe.
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return proc, url


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    STARTED.remove(proc)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# === history ===


def seed_history(db, monitors, rng):
    """Day rollups for the 89 days before today, hour rollups for the 7 days before this hour,
    and closed incidents on the days marked as outages. Probes every 30 s: 2,880 a day."""
    con = sqlite3.connect(db)
    keys = dict(con.execute("SELECT id, key FROM monitors"))
    now = int(time.time() * 1000)
    today = now // DAY_MS * DAY_MS
    this_hour = now // HOUR_MS * HOUR_MS
    cols = ["le_200", "le_300", "le_500", "le_750", "le_1000"]
    days = hours = incidents = 0
    for i, monitor in enumerate(monitors):
        key = keys[monitor]
        # One monitor in five was added later: its first days have no data.
        first = 89 if i % 5 else rng.randint(10, 60)
        base = rng.choice(cols[:3])
        for back in range(first, 0, -1):
            day = today - back * DAY_MS
            roll = rng.random()
            failed = 0
            if roll < 0.02:  # an outage: an incident of 20 min to 3 h
                minutes = rng.randint(20, 180)
                failed = minutes * 2
                start = day + rng.randint(0, 20) * HOUR_MS
                con.execute(
                    "INSERT INTO incidents (monitor, provider, kind, verdict, started_at, "
                    "ended_at, failed_probes, first_error, last_error) VALUES "
                    "(?, ?, 'outage', 'unavailable', ?, ?, ?, ?, ?)",
                    (monitor, monitor.rsplit("-", 1)[0], start, start + minutes * 60_000, failed,
                     "503 Service Unavailable", "503 Service Unavailable"),
                )
                incidents += 1
            elif roll < 0.10:  # a few failures that did not add up to an incident
                failed = rng.randint(1, 6)
            healthy = 2880 - failed
            bucket = base if rng.random() < 0.9 else rng.choice(cols)
            con.execute(
                f"INSERT INTO rollups (resolution, bucket_start, monitor_key, total, healthy, "
                f"provider_failed, {bucket}) VALUES (2, ?, ?, 2880, ?, ?, ?)",
                (day, key, healthy, failed, healthy),
            )
            days += 1
        for back in range(1, 7 * 24):
            hour = this_hour - back * HOUR_MS
            if hour < today - first * DAY_MS:
                continue
            split = rng.randint(60, 120)
            first_bucket, second = base, rng.choice(cols)
            con.execute(
                f"INSERT INTO rollups (resolution, bucket_start, monitor_key, total, healthy, "
                f"{first_bucket}) VALUES (1, ?, ?, 120, 120, ?) ON CONFLICT DO NOTHING",
                (hour, key, split),
            )
            con.execute(
                f"UPDATE rollups SET {second} = {second} + ? WHERE resolution = 1 AND "
                f"bucket_start = ? AND monitor_key = ?",
                (120 - split, hour, key),
            )
            hours += 1
    con.commit()
    con.close()
    return {"day_rows": days, "hour_rows": hours, "incidents": incidents}


# === measures ===


def fetch(url, path, encoding=None):
    """(status, header bytes, body bytes, headers) of one GET, body as sent (not decoded)."""
    host = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=120)
    headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": "identity"}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    head = sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + len("HTTP/1.1 200 OK\r\n\r\n")
    conn.close()
    return resp.status, head, body, dict((k.lower(), v) for k, v in resp.getheaders())


def sizes(url, path):
    out = {}
    for name, enc in [("identity", None), ("gzip", "gzip"), ("br", "br")]:
        status, head, body, headers = fetch(url, path, enc)
        out[name] = {
            "status": status,
            "wire_bytes": head + len(body),
            "body_bytes": len(body),
            "content_encoding": headers.get("content-encoding", "identity"),
        }
    return out


def histogram(metrics, name):
    rows = []
    for m in re.finditer(name + r'_bucket\{le="([^"]+)"\} (\d+)', metrics):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        rows.append((le, int(m.group(2))))
    return sorted(rows)


def delta(after, before):
    b = dict(before)
    return [(le, n - b.get(le, 0)) for le, n in after]


def quantile(rows, q):
    total = rows[-1][1] if rows else 0
    if not total:
        return None
    prev_le, prev_n = 0.0, 0
    for le, n in rows:
        if n >= q * total:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((q * total - prev_n) / max(n - prev_n, 1))
        prev_le, prev_n = le, n
    return prev_le


def lateness(url):
    metrics = urllib.request.urlopen(url + "/metrics", timeout=60).read().decode()
    return histogram(metrics, "isdown_schedule_lateness_seconds")


def window(before, after):
    rows = delta(after, before)
    probes = rows[-1][1] if rows else 0
    p50, p99 = quantile(rows, 0.5), quantile(rows, 0.99)
    return {
        "probes": probes,
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
    }


def size_in_bytes(text):
    m = re.match(r"([\d.]+)([KMGT]?B)", text)
    scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}[m.group(2)]
    return float(m.group(1)) * scale


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[m.group(2)]


def wrk(url, path, seconds, connections):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency",
            "-H", "Accept-Encoding: gzip", url + path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+\w+) read", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    n = int(requests.group(1))
    return {
        "requests": n,
        "rate": rate,
        "bytes_per_request": size_in_bytes(requests.group(4)) / max(n, 1),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "socket_errors": errors.group(1) if errors else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "command": " ".join(args),
    }


# === main ===


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--monitors", type=int, default=200)
    ap.add_argument("--down", type=int, default=20, help="monitors whose provider fails")
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--duration", type=int, default=15, help="seconds per flood")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=20, help="seconds after start before measuring")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", default=BIN, help="the isdown binary (to measure an older build)")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work = tempfile.mkdtemp(prefix="isdown-pagebench-")
    try:
        return run(a, work)
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)


def run(a, work):
    if not a.no_build and a.bin == BIN:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    bin = a.bin
    rng = random.Random(a.seed)
    ok, ok_url = spawn([bin, "mock-provider", "--listen", "127.0.0.1:0", "--style", "kimi",
                        "--scenario", "ok"], os.path.join(work, "mock-ok.log"))
    bad, bad_url = spawn([bin, "mock-provider", "--listen", "127.0.0.1:0", "--style", "kimi",
                          "--scenario", "unavailable"], os.path.join(work, "mock-bad.log"))
    cfg = os.path.join(work, "isdown.toml")
    monitors = []
    with open(cfg, "w") as f:
        f.write(f'[monitor]\ninterval = "{a.interval}"\ntimeout = "5s"\n\n')
        for i in range(a.monitors):
            url = bad_url if i < a.down else ok_url
            f.write(f'[providers.p{i:03}]\nname = "Provider {i:03}"\nbase_url = "{url}/v1"\n'
                    f'api_key_env = "BENCH_KEY"\nprobe_model = "kimi-k2.6"\n'
                    f'[[monitors]]\nprovider = "p{i:03}"\nprobes = ["chat"]\n\n')
            monitors.append(f"p{i:03}-chat")
    data = os.path.join(work, "data")
    env = dict(os.environ, BENCH_KEY=KEY, RUST_LOG="warn")
    serve_args = [bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data", data]

    # First start: creates the database and registers the monitors; then history is seeded
    # while serve is stopped.
    serve, url = spawn(serve_args, os.path.join(work, "serve-1.log"), env=env)
    time.sleep(2)
    stop(serve)
    seeded = seed_history(os.path.join(data, "isdown.db"), monitors, rng)
    serve, url = spawn(serve_args, os.path.join(work, "serve.log"), env=env)
    log(f"serve on {url}; seeded {seeded}; warming up {a.warmup} s")
    time.sleep(a.warmup)

    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "args": vars(a),
        "seeded": seeded,
        "sizes": {p: sizes(url, p) for p in PATHS[:3]},
        "floods": {p: [] for p in PATHS},
        "idle": [],
        "memory": {"rss_before_kb": status_kb(serve.pid, "VmRSS")},
    }
    for p, s in result["sizes"].items():
        log(f"{p}: identity {s['identity']['wire_bytes']} B, gzip {s['gzip']['wire_bytes']} B "
            f"({s['gzip']['content_encoding']}), br {s['br']['wire_bytes']} B "
            f"({s['br']['content_encoding']}) on the wire")
    for r in range(a.repeat):
        before, cpu0, t0 = lateness(url), cpu_seconds(serve.pid), time.monotonic()
        time.sleep(a.duration)
        idle = window(before, lateness(url))
        idle["cpu_percent"] = 100 * (cpu_seconds(serve.pid) - cpu0) / (time.monotonic() - t0)
        idle["rss_kb"] = status_kb(serve.pid, "VmRSS")
        result["idle"].append(idle)
        log(f"idle {a.duration} s: lateness {fmt_window(idle)}  serve cpu {idle['cpu_percent']:.1f} %  "
            f"rss {idle['rss_kb'] / 1024:.1f} MiB")
        for p in PATHS:
            before, cpu0, t0 = lateness(url), cpu_seconds(serve.pid), time.monotonic()
            w = wrk(url, p, a.duration, a.connections)
            w["lateness"] = window(before, lateness(url))
            w["cpu_percent"] = 100 * (cpu_seconds(serve.pid) - cpu0) / (time.monotonic() - t0)
            w["rss_kb"] = status_kb(serve.pid, "VmRSS")
            result["floods"][p].append(w)
            log(f"{p:22} {w['rate']:9.0f}/s  p50 {fmt(w['p50_ms'])} p99 {fmt(w['p99_ms'])} ms  "
                f"{w['bytes_per_request']:8.0f} B/req  non-2xx {w['non_2xx']}  "
                f"errors {w['socket_errors']}  lateness {fmt_window(w['lateness'])}  "
                f"serve cpu {w['cpu_percent']:.0f} %  rss {w['rss_kb'] / 1024:.1f} MiB")
    result["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    result["memory"]["rss_after_kb"] = status_kb(serve.pid, "VmRSS")
    result["memory"]["peak_kb"] = status_kb(serve.pid, "VmHWM")
    stop(serve)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    report(result)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def fmt_window(w):
    return f"p50 {fmt(w['p50_ms'])} ms, p99 {fmt(w['p99_ms'])} ms ({w['probes']} probes)"


def log(text):
    print(text, file=sys.stderr, flush=True)


def report(r):
    print(f"\nRun of {r['date']} (commit {r['commit']}), {r['args']['monitors']} monitors, "
          f"{r['args']['connections']} connections, {r['args']['duration']} s per flood, "
          f"median of {r['args']['repeat']}; load average {' '.join(r['loadavg_start'])} at the "
          f"start, {' '.join(r['loadavg_end'])} at the end\n")
    print("| path | identity | gzip | br |")
    print("|---|---|---|---|")
    for p, s in r["sizes"].items():
        cells = [f"{s[e]['wire_bytes']:,} B" + ("" if s[e]["content_encoding"] == e or e == "identity"
                                                else f" (sent {s[e]['content_encoding']})")
                 for e in ("identity", "gzip", "br")]
        print(f"| `{p}` | " + " | ".join(cells) + " |")
    healthz = med([w["rate"] for w in r["floods"]["/healthz"]])
    print("\n| flood on | requests/s | vs `/healthz` | p50 ms | p99 ms | bytes/request | "
          "probe lateness p50 / p99 during the flood |")
    print("|---|---|---|---|---|---|---|")
    for p, runs in r["floods"].items():
        rate = med([w["rate"] for w in runs])
        print(f"| `{p}` | {rate:,.0f} | {100 * rate / healthz:.1f} % | "
              f"{fmt(med([w['p50_ms'] for w in runs]))} | {fmt(med([w['p99_ms'] for w in runs]))} | "
              f"{med([w['bytes_per_request'] for w in runs]):,.0f} | "
              f"{fmt(med([w['lateness']['p50_ms'] for w in runs]))} / "
              f"{fmt(med([w['lateness']['p99_ms'] for w in runs]))} ms |")
    print(f"| (idle) | | | | | | {fmt(med([w['p50_ms'] for w in r['idle']]))} / "
          f"{fmt(med([w['p99_ms'] for w in r['idle']]))} ms |")
    m = r["memory"]
    idle_cpu = med([w["cpu_percent"] for w in r["idle"]])
    print(f"\nserve CPU while idle (monitoring and rendering only): {idle_cpu:.1f} % of one core")
    rss = [w["rss_kb"] / 1024 for w in r["idle"]]
    print(f"serve RSS {m['rss_before_kb'] / 1024:.1f} MiB before the floods; after each round: "
          + ", ".join(f"{v:.1f}" for v in rss)
          + f" MiB; at the end {m['rss_after_kb'] / 1024:.1f} MiB, peak {m['peak_kb'] / 1024:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
