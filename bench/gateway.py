#!/usr/bin/env python3
"""Gateway benchmark: a mock upstream direct vs. through `isdown serve`'s gateway vs. LiteLLM.

In one run, on this machine, against one `isdown mock-provider --style openai` (scenario `ok`):
- unloaded latency: one connection, requests back to back, 3 s per target (direct, this is the
  floor that oha, loopback and the mock's answer cost together);
- fixed-rate load (oha, `-q RATE`, latency corrected for coordinated omission) at each of
  --rates for --duration seconds after a --warmup, interleaved per rate (direct, isdown,
  LiteLLM): p50/p99/mean latency, achieved rate, errors; the gateway's *added* latency is its
  percentile minus the direct percentile of the same rate in the same run;
- maximum throughput (no rate limit, --max-connections connections, --max-duration seconds);
- streaming time to first token: a stdlib client sends --stream-requests `"stream": true`
  requests one after another on a kept-alive connection and times each until the first `data:`
  line carrying non-empty content (median, p99, and the amount added over direct), and until
  the end of the stream;
- memory: peak RSS (VmHWM) of `isdown serve` and of the LiteLLM process tree after the runs;
- CPU seconds of every process (oha, mock, isdown, LiteLLM) over each load run, so one can see
  which process the two cores were spent on.

Prints a Markdown table and writes the raw figures to target/bench/gateway.json. Everything
runs on 127.0.0.1. Nothing is installed at run time unless --litellm-venv names a directory
that does not exist: then it is created with `python3 -m venv` and
`pip install 'litellm[proxy]==1.108.7'` (needs a package index), and the script says so.

Usage: python3 bench/gateway.py [--duration 20] [--rates 500,1000,2000] [--repeat 3]
       [--litellm-venv /work/bench-venv] [--no-litellm] [--no-build]
(see BENCHMARKS.md for results and caveats).
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "isdown")
OUT = os.path.join(ROOT, "target", "bench", "gateway.json")
TICK = os.sysconf("SC_CLK_TCK")
LITELLM_VERSION = "1.108.7"
BODY = '{"model":"bench","messages":[{"role":"user","content":"ping"}]}'
STREAM_BODY = '{"model":"bench","messages":[{"role":"user","content":"ping"}],"stream":true}'
MASTER_KEY = "sk-bench-litellm-master-0000"
UPSTREAM_KEY = "sk-bench-upstream-not-a-real-key-0000"

# Every process started here as (Popen, whether to kill its whole process group), so that a
# normal exit, an exception or Ctrl-C/SIGTERM kills all of them.
STARTED = []


def cleanup():
    # A second Ctrl-C must not interrupt the cleanup and leave processes behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc, group in reversed(STARTED):
        if proc.poll() is not None:
            continue
        try:
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.terminate()
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    STARTED.clear()


def on_signal(signum, _frame):
    # Turn SIGTERM/SIGINT into an exception so the `finally` in main() runs cleanup().
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(args, log, group=False, **kw):
    """Starts a process whose stderr goes to `log`; `group` gives it its own process group
    (LiteLLM may start worker processes: the group is killed as a whole)."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=open(log, "wb"),
        text=True,
        start_new_session=group,
        **kw,
    )
    STARTED.append((proc, group))
    return proc


def banner_url(proc, what):
    """Reads the banner line (`... on http://ADDR ...`), then drains stdout in the background so
    a chatty process can never block on a full pipe."""
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{what} exited before printing its address (rc {proc.wait()})")
    url = next(w for w in line.split() if w.startswith("http://")).rstrip("/,")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return url


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# === /proc ===


def children(pid):
    """pid and all its descendants (from /proc/*/stat ppid)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                parent[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                pass
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, p in parent.items() if p in frontier]
        tree.extend(frontier)
    return tree


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        except OSError:
            pass
    return total


def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# === targets ===


class Target:
    def __init__(self, name, url, proc, headers=(), tree=False):
        self.name, self.url, self.proc, self.headers, self.tree = name, url, proc, headers, tree
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    @property
    def endpoint(self):
        return self.url + "/v1/chat/completions"

    def pids(self):
        return children(self.proc.pid) if self.tree else [self.proc.pid]


def start_litellm(venv, mock_url, work, workers):
    exe = os.path.join(venv, "bin", "litellm")
    if not os.path.exists(exe):
        print(
            f"# {exe} is missing: creating the venv with pip install 'litellm[proxy]=={LITELLM_VERSION}'",
            file=sys.stderr,
        )
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run(
            [os.path.join(venv, "bin", "pip"), "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
        )
    cfg = os.path.join(work, "litellm.yaml")
    with open(cfg, "w") as f:
        f.write(
            "model_list:\n"
            "  - model_name: bench\n"
            "    litellm_params:\n"
            "      model: openai/bench\n"
            f"      api_base: {mock_url}/v1\n"
            f"      api_key: {UPSTREAM_KEY}\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
            "  set_verbose: false\n"
        )
    port = free_port()
    env = dict(
        os.environ,
        LITELLM_MASTER_KEY=MASTER_KEY,
        LITELLM_TELEMETRY="False",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        NO_PROXY="*",
    )
    for name in ("DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    args = [exe, "--config", cfg, "--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)]
    proc = spawn(args, os.path.join(work, "litellm.log"), group=True, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"litellm exited (rc {proc.returncode}); see {work}/litellm.log")
        try:
            urllib.request.urlopen(url + "/health/liveliness", timeout=2).read()
            break
        except OSError:
            time.sleep(0.5)
    else:
        raise SystemExit("litellm did not become ready in 120 s")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env).stdout
    return Target("LiteLLM", url, proc, headers=[f"authorization: Bearer {MASTER_KEY}"], tree=True), args, version.strip()


# === load ===


# Every target, so each load run can report the CPU seconds of all of them (set by run()).
ALL = []


def oha(target, seconds, rate=None, connections=32):
    """One oha run; returns its JSON summary plus the CPU seconds used meanwhile by oha, by the
    target and by every process of the benchmark (the mock serves the gateway's load too)."""
    args = [
        os.path.expanduser("~/.cargo/bin/oha") if not shutil.which("oha") else "oha",
        "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
        "-w", "-m", "POST", "-T", "application/json", "-d", BODY,
    ]
    if rate:
        args += ["-q", str(rate), "--latency-correction"]
    for header in target.headers:
        args += ["-H", header]
    args.append(target.endpoint)
    pids = {t.name: t.pids() for t in ALL}
    cpu0 = {name: cpu_seconds(p) for name, p in pids.items()}
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
        STARTED.append((proc, False))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        STARTED.remove((proc, False))
        if proc.returncode:
            raise SystemExit(f"oha failed ({proc.returncode}): {proc.stderr.read().decode()}")
        out.seek(0)
        raw = json.load(out)
    cpu = {name: cpu_seconds(p) - cpu0[name] for name, p in pids.items()}
    cpu["oha"] = usage.ru_utime + usage.ru_stime
    cpu["target"] = cpu[target.name]
    return raw, cpu, args


def summarize(raw, cpu, seconds):
    s = raw["summary"]
    pct = raw.get("latencyPercentiles", {})
    codes = raw.get("statusCodeDistribution", {})
    errors = raw.get("errorDistribution", {})
    ok = int(codes.get("200", 0))
    total = sum(int(n) for n in codes.values()) + sum(int(n) for n in errors.values())
    return {
        "p50_ms": pct.get("p50", 0) * 1000 if pct.get("p50") is not None else None,
        "p99_ms": pct.get("p99", 0) * 1000 if pct.get("p99") is not None else None,
        "mean_ms": s["average"] * 1000 if s.get("average") is not None else None,
        "rate": ok / seconds,
        "ok": ok,
        "failed": total - ok,
        "status": codes,
        "errors": errors,
        "cpu_s": cpu,
    }


def median_of(runs, key):
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


# === streaming ===


def first_token_times(target, n):
    """Sequential streaming requests on one kept-alive connection; seconds until the first
    `data:` line with non-empty content, and until the end of the stream."""
    headers = {"content-type": "application/json"}
    for h in target.headers:
        name, value = h.split(": ", 1)
        headers[name] = value
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    ttft, total, failed = [], [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=STREAM_BODY, headers=headers)
        resp = conn.getresponse()
        first = None
        if resp.status == 200:
            while True:
                line = resp.readline()
                if not line:
                    break
                if first is None and line.startswith(b"data:") and content(line):
                    first = time.perf_counter() - t0
        else:
            resp.read()
        end = time.perf_counter() - t0
        if first is None:
            failed += 1
        else:
            ttft.append(first)
            total.append(end)
    conn.close()
    return ttft, total, failed


def content(line):
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return False
    try:
        chunk = json.loads(payload)
        delta = chunk["choices"][0].get("delta") or {}
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"))


def pctl(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


# === main ===


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="500,1000,2000", help="fixed rates, requests/s")
    ap.add_argument("--duration", type=int, default=20, help="seconds per fixed-rate run")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of discarded load before each run")
    ap.add_argument("--repeat", type=int, default=3, help="fixed-rate runs per target and rate (medians quoted)")
    ap.add_argument("--connections", type=int, default=32, help="oha connections at fixed rates")
    ap.add_argument("--max-duration", type=int, default=15)
    ap.add_argument("--max-connections", type=int, default=64)
    ap.add_argument("--stream-requests", type=int, default=300)
    ap.add_argument("--litellm-venv", default="/work/bench-venv")
    ap.add_argument("--litellm-workers", type=int, default=1, help="LiteLLM --num_workers (its default: 1)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    rates = [int(r) for r in a.rates.split(",")]

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work = tempfile.mkdtemp(prefix="isdown-gwbench-")
    try:
        return run(a, rates, work)
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)


def run(a, rates, work):
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    mock = spawn(
        [BIN, "mock-provider", "--listen", "127.0.0.1:0", "--style", "openai", "--scenario", "ok"],
        os.path.join(work, "mock.log"),
    )
    mock_url = banner_url(mock, "mock-provider")
    cfg = os.path.join(work, "isdown.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[providers.up]\nbase_url = "{mock_url}/v1"\napi_key_env = "BENCH_UPSTREAM_KEY"\n'
            'probe_model = "bench"\n\n'
            # One cheap monitor (the provider's own), at a long interval: no probe noise.
            '[[monitors]]\nprovider = "up"\nprobes = ["reachability"]\ninterval = "300s"\n\n'
            '[[routes]]\nmodel = "bench"\ntargets = [{ provider = "up" }]\n\n'
            "[gateway]\nopen_on_localhost = true\n"
        )
    env = dict(os.environ, BENCH_UPSTREAM_KEY=UPSTREAM_KEY, RUST_LOG="warn")
    serve = spawn(
        [BIN, "serve", "--config", cfg, "--data", os.path.join(work, "data"), "--listen", "127.0.0.1:0"],
        os.path.join(work, "serve.log"),
        env=env,
    )
    serve_url = banner_url(serve, "isdown serve")
    targets = [Target("direct", mock_url, mock), Target("isdown", serve_url, serve)]
    ALL[:] = targets
    litellm_info = None
    if not a.no_litellm:
        litellm, args, version = start_litellm(a.litellm_venv, mock_url, work, a.litellm_workers)
        targets.append(litellm)
        ALL[:] = targets
        litellm_info = {"command": args, "version": version, "workers": a.litellm_workers}

    # Smoke: every target answers the body with a 200 before anything is measured.
    for t in targets:
        req = urllib.request.Request(
            t.endpoint, data=BODY.encode(), headers={"content-type": "application/json",
            **dict(h.split(": ", 1) for h in t.headers)},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200, (t.name, resp.status)

    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "args": vars(a),
        "litellm": litellm_info,
        "fixed": {},
        "max": {},
        "stream": {},
        "memory": {},
    }

    # Unloaded: one connection, no rate limit, requests back to back. Direct, this is the floor
    # (oha + loopback + mock's `ok` answer); for LiteLLM, its latency when it is not saturated.
    result["unloaded"] = {}
    for t in targets:
        oha(t, 1, connections=1)
        raw, cpu, _ = oha(t, 3, connections=1)
        result["unloaded"][t.name] = summarize(raw, cpu, 3)
        u = result["unloaded"][t.name]
        log(f"{t.name:8} unloaded (1 connection): p50 {fmt(u['p50_ms'])} p99 {fmt(u['p99_ms'])} ms, {u['rate']:.0f}/s")

    for rate in rates:
        for t in targets:
            runs = []
            for _ in range(a.repeat):
                oha(t, a.warmup, rate=rate, connections=a.connections)
                raw, cpu, args = oha(t, a.duration, rate=rate, connections=a.connections)
                runs.append(summarize(raw, cpu, a.duration))
                r = runs[-1]
                log(f"{t.name:8} {rate:5}/s: p50 {fmt(r['p50_ms'])} p99 {fmt(r['p99_ms'])} ms, "
                    f"{r['rate']:.0f}/s ok, {r['failed']} failed")
            result["fixed"].setdefault(str(rate), {})[t.name] = {
                "runs": runs,
                "p50_ms": median_of(runs, "p50_ms"),
                "p99_ms": median_of(runs, "p99_ms"),
                "mean_ms": median_of(runs, "mean_ms"),
                "rate": median_of(runs, "rate"),
                "failed": sum(r["failed"] for r in runs),
                "command": args,
            }

    for t in targets:
        oha(t, a.warmup, connections=a.max_connections)
        raw, cpu, args = oha(t, a.max_duration, connections=a.max_connections)
        r = summarize(raw, cpu, a.max_duration)
        r["command"] = args
        result["max"][t.name] = r
        log(f"{t.name:8} max: {r['rate']:.0f}/s, p50 {fmt(r['p50_ms'])} ms, {r['failed']} failed")

    for t in targets:
        first_token_times(t, 20)  # warm-up
        ttft, total, failed = first_token_times(t, a.stream_requests)
        result["stream"][t.name] = {
            "n": len(ttft),
            "failed": failed,
            "ttft_p50_ms": pctl(ttft, 0.5) * 1000 if ttft else None,
            "ttft_p99_ms": pctl(ttft, 0.99) * 1000 if ttft else None,
            "total_p50_ms": pctl(total, 0.5) * 1000 if total else None,
        }
        log(f"{t.name:8} stream: ttft p50 {fmt(result['stream'][t.name]['ttft_p50_ms'])} ms")

    for t in targets[1:]:
        pids = t.pids()
        result["memory"][t.name] = {
            "processes": len(pids),
            "vmhwm_kib": sum(status_kb(p, "VmHWM") for p in pids),
            "vmrss_kib": sum(status_kb(p, "VmRSS") for p in pids),
        }
    result["loadavg_end"] = open("/proc/loadavg").read().split()[:3]

    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(report(result, rates, [t.name for t in targets]))
    print(f"\nraw results: {os.path.relpath(a.out, ROOT)}")


def fmt(v, digits=3):
    return "—" if v is None else f"{v:.{digits}f}"


def log(text):
    print(f"# {text}", file=sys.stderr, flush=True)


def report(r, rates, names):
    out = []
    out.append(f"Run of {r['date']} (commit {r['commit']}, {r['cpus']} CPUs, "
               f"load average at start {' '.join(r['loadavg_start'])}, at end {' '.join(r['loadavg_end'])}).\n")
    out.append("| load | target | p50 ms | p99 ms | mean ms | achieved req/s | failed | added p50 ms | added p99 ms | CPU s: target / mock / oha |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    d = r["unloaded"]["direct"]
    for name in names:
        x = r["unloaded"][name]
        added50 = added99 = "—"
        if name != "direct":
            added50 = f"{x['p50_ms'] - d['p50_ms']:+.3f}"
            added99 = f"{x['p99_ms'] - d['p99_ms']:+.3f}"
        out.append(f"| unloaded (1 conn., back to back) | {name} | {fmt(x['p50_ms'])} | {fmt(x['p99_ms'])} | "
                   f"{fmt(x['mean_ms'])} | {x['rate']:.0f} | {x['failed']} | {added50} | {added99} | "
                   f"{x['cpu_s']['target']:.1f} / {x['cpu_s']['direct']:.1f} / {x['cpu_s']['oha']:.1f} |")
    for rate in rates:
        row = r["fixed"][str(rate)]
        d = row["direct"]
        for name in names:
            x = row[name]
            added50 = added99 = "—"
            if name != "direct" and x["p50_ms"] is not None and d["p50_ms"] is not None:
                added50 = f"{x['p50_ms'] - d['p50_ms']:+.3f}"
                added99 = f"{x['p99_ms'] - d['p99_ms']:+.3f}"
            cpu = "/".join(f" {statistics.median(run['cpu_s'][k] for run in x['runs']):.1f} "
                           for k in ("target", "direct", "oha")).strip()
            out.append(f"| {rate}/s | {name} | {fmt(x['p50_ms'])} | {fmt(x['p99_ms'])} | {fmt(x['mean_ms'])} | "
                       f"{x['rate']:.0f} | {x['failed']} | {added50} | {added99} | {cpu} |")
    for name in names:
        x = r["max"][name]
        out.append(f"| max ({r['args']['max_connections']} conn.) | {name} | {fmt(x['p50_ms'])} | {fmt(x['p99_ms'])} | "
                   f"{fmt(x['mean_ms'])} | **{x['rate']:.0f}** | {x['failed']} | — | — | "
                   f"{x['cpu_s']['target']:.1f} / {x['cpu_s']['direct']:.1f} / {x['cpu_s']['oha']:.1f} |")
    out.append("")
    out.append("| streaming (sequential) | TTFT p50 ms | TTFT p99 ms | added TTFT p50 ms | added TTFT p99 ms | whole stream p50 ms | failed |")
    out.append("|---|---|---|---|---|---|---|")
    d = r["stream"]["direct"]
    for name in names:
        x = r["stream"][name]
        a50 = a99 = "—"
        if name != "direct" and x["ttft_p50_ms"] is not None:
            a50 = f"{x['ttft_p50_ms'] - d['ttft_p50_ms']:+.3f}"
            a99 = f"{x['ttft_p99_ms'] - d['ttft_p99_ms']:+.3f}"
        out.append(f"| {name} | {fmt(x['ttft_p50_ms'])} | {fmt(x['ttft_p99_ms'])} | {a50} | {a99} | "
                   f"{fmt(x['total_p50_ms'])} | {x['failed']} |")
    out.append("")
    for name, m in r["memory"].items():
        out.append(f"- peak RSS {name}: **{m['vmhwm_kib'] / 1024:.1f} MiB** (VmHWM summed over "
                   f"{m['processes']} process(es); RSS at end {m['vmrss_kib'] / 1024:.1f} MiB)")
    out.append(f"- max throughput isdown / direct: {r['max']['isdown']['rate'] / r['max']['direct']['rate']:.2f}")
    if "LiteLLM" in r["max"] and r["max"]["LiteLLM"]["rate"]:
        ratio = r["max"]["isdown"]["rate"] / r["max"]["LiteLLM"]["rate"]
        out.append(f"- target: max throughput ≥ 50 × LiteLLM's — isdown / LiteLLM **{ratio:.1f}×**: "
                   f"{'met' if ratio >= 50 else 'NOT met'}")
    at1000 = r["fixed"].get("1000")
    if at1000:
        added = at1000["isdown"]["p99_ms"] - at1000["direct"]["p99_ms"]
        pairs = zip(at1000["isdown"]["runs"], at1000["direct"]["runs"])
        per_run = ", ".join(f"{g['p99_ms'] - d['p99_ms']:+.3f}" for g, d in pairs)
        out.append(f"- target: added p99 < 1 ms at 1,000 requests/s — **{added:+.3f} ms**: "
                   f"{'met' if added < 1 else 'NOT met'}"
                   f" (per-run added p99: {per_run} ms)")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
