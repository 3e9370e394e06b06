#!/usr/bin/env python3
"""Gateway benchmark: a mock upstream direct vs. through `isdown serve`'s gateway, small and
agent-sized bodies, for one or more isdown binaries measured in the same run.

Against one `isdown mock-provider --style openai` (scenario `ok`), on 127.0.0.1, with wrk
(Debian's `wrk` package) as the load generator:
- targets: `direct` (the mock itself) and, for every --bin NAME=PATH, `NAME` (isdown's gateway
  with a small request, ~70 bytes) and `NAME+100k` (a 100 KB agent-shaped request: a long
  system prompt, 12 turns, 20 tools); with --big also `NAME+1m` (1 MB, 50 tools) — and the
  direct mock with the same bodies, so that each body size has its own floor;
- per round and target: 1 connection back to back (p50, p99: added latency is the gateway's
  percentile minus direct's for the same body), 32 connections unthrottled (requests/s), 32
  connections paced at 1,000 requests/s in all (wrk's `delay()`: each connection waits 32 ms
  between requests; p99 and the rate achieved), and sequential streaming requests timed to the
  first content byte (time to first byte added);
- memory: each isdown process's VmRSS sampled during its 32-connection runs (max) and VmHWM at
  the end;
- rounds: targets run in an order rotated every round, so baseline and candidate binaries share
  the machine's conditions; medians over --rounds are reported, with each candidate's ratio to
  the first --bin (the baseline) in the same run, and the load average at start and end.

Prints Markdown tables and writes the raw figures to target/bench/gateway.json.
LiteLLM is no longer part of this run: it is not installed on the benchmark machine (its
earlier numbers stay in BENCHMARKS.md with the command that produced them).

Usage: python3 bench/gateway.py --bin base=/tmp/isdown-main --bin new=target/release/isdown
       [--rounds 3] [--duration 8] [--stream-requests 200] [--big]
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench", "gateway.json")
UPSTREAM_KEY = "sk-bench-upstream-not-a-real-key-0000"
SMALL = '{"model":"bench","messages":[{"role":"user","content":"ping"}]}'
STARTED = []


def agent_body(target_bytes, tools):
    """An agent-shaped request of about `target_bytes`: system prompt, turns, tool schemas."""
    tool_list = [{
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Reads, edits or searches files in the workspace. " * 4,
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string", "description": "file path relative to the root"},
                "pattern": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["path"]},
        },
    } for i in range(tools)]
    messages = [{"role": "system", "content": "You are a coding agent. " * 40}]
    for turn in range(12):
        messages.append({"role": "user", "content": f"step {turn}: look at src/module_{turn}.rs"})
        messages.append({"role": "assistant", "content": f"Reading module {turn}. " * 10})
    body = {"model": "bench", "messages": messages, "tools": tool_list}
    filler = target_bytes - len(json.dumps(body))
    messages.append({"role": "user", "content": "fn main() {}\n" * max(0, filler // 13)})
    return json.dumps(body)


def spawn(args, env=None):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    STARTED.append(proc)
    line = proc.stdout.readline()
    url = next(w for w in line.split() if w.startswith("http://")).rstrip("/,")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, url


def status_kib(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, body_file, connections, seconds, paced_ms=None, threads=None):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*a"); f:close()\n'
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    if paced_ms:
        script.write(f"function delay() return {paced_ms} end\n")
    script.close()
    threads = threads or min(connections, 2)
    args = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "-s", script.name, url + "/v1/chat/completions"]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    os.unlink(script.name)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "p50_ms": ms(pct["50"]) if "50" in pct else None,
        "p99_ms": ms(pct["99"]) if "99" in pct else None,
        "rate": float(rate.group(1)) if rate else 0.0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def first_bytes(url, n):
    host, port = url.removeprefix("http://").split(":")
    body = SMALL[:-1] + ',"stream":true}'
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        first = None
        while True:
            line = resp.readline()
            if not line:
                break
            if first is None and line.startswith(b"data:") and b'"content":"p' in line:
                first = time.perf_counter() - t0
        if first is not None:
            times.append(first * 1000)
    conn.close()
    return statistics.median(times) if times else None


def sample_rss(pid, stop, peak):
    while not stop.is_set():
        peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True,
                    help="NAME=PATH[:VAR=VALUE,...]; the first is the baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    ap.add_argument("--stream-requests", type=int, default=200)
    ap.add_argument("--big", action="store_true", help="also a 1 MB body with 50 tools")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="isdown-gwbench-")
    # NAME=PATH[:VAR=VALUE,...]: extra environment for that isdown (e.g. TOKIO_WORKER_THREADS=1).
    bins, extra_env = [], {}
    for spec in a.bin:
        name, rest = spec.split("=", 1)
        path, _, env_list = rest.partition(":")
        bins.append((name, path))
        extra_env[name] = dict(kv.split("=", 1) for kv in env_list.split(",") if kv)
    bodies = {"": SMALL, "+100k": agent_body(100_000, 20)}
    if a.big:
        bodies["+1m"] = agent_body(1_000_000, 50)
    files = {}
    for suffix, body in bodies.items():
        files[suffix] = os.path.join(work, f"body{suffix or '-small'}.json")
        open(files[suffix], "w").write(body)
    try:
        mock, mock_url = spawn([bins[0][1], "mock-provider", "--listen", "127.0.0.1:0", "--style", "openai",
                                "--scenario", "ok"])
        # One isdown process per binary and body size, so that each one's memory under load is
        # its own (a process that served 100 KB bodies keeps the larger buffers).
        targets = [(f"direct{s}", mock_url, s, None) for s in bodies]
        for name, path in bins:
            for suffix in bodies:
                label = f"{name}{suffix}"
                cfg = os.path.join(work, f"{label}.toml")
                open(cfg, "w").write(
                    f'[providers.up]\nbase_url = "{mock_url}/v1"\napi_key_env = "BENCH_UPSTREAM_KEY"\n'
                    'probe_model = "bench"\n'
                    '[[monitors]]\nprovider = "up"\nprobes = ["reachability"]\ninterval = "300s"\n'
                    '[[routes]]\nmodel = "bench"\ntargets = [{ provider = "up" }]\n'
                    "[gateway]\nopen_on_localhost = true\n")
                env = dict(os.environ, BENCH_UPSTREAM_KEY=UPSTREAM_KEY, RUST_LOG="warn", **extra_env[name])
                proc, url = spawn([path, "serve", "--config", cfg, "--data", os.path.join(work, label),
                                   "--listen", "127.0.0.1:0"], env)
                targets.append((label, url, suffix, proc))
        result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "load_start": os.getloadavg(), "bins": a.bin, "rounds": [], "rss": {}}
        rss_peak = {label: [0] for label, _, _, proc in targets if proc}
        for r in range(a.rounds):
            rows = {}
            order = targets[r % len(targets):] + targets[:r % len(targets)]
            for label, url, suffix, proc in order:
                # The mock keeps the newest 1,000 requests it received: forget them.
                subprocess.run(["curl", "-s", "-X", "DELETE", f"{mock_url}/_mock/requests"], capture_output=True)
                wrk(url, files[suffix], 1, 1)  # warm-up
                one = wrk(url, files[suffix], 1, a.duration, threads=1)
                stop, peak = threading.Event(), [0]
                if proc:
                    sampler = threading.Thread(target=sample_rss, args=(proc.pid, stop, peak))
                    sampler.start()
                many = wrk(url, files[suffix], 32, a.duration)
                paced = wrk(url, files[suffix], 32, a.duration, paced_ms=32)
                stop.set()
                if proc:
                    sampler.join()
                    rss_peak[label][0] = max(rss_peak[label][0], peak[0])
                ttfb = first_bytes(url, a.stream_requests) if suffix == "" else None
                rows[label] = {"c1": one, "c32": many, "paced": paced, "ttfb_ms": ttfb,
                               "load": os.getloadavg()[0]}
                print(f"# round {r + 1} {label:12} c1 p50 {one['p50_ms']:.3f} p99 {one['p99_ms']:.3f} ms | "
                      f"c32 {many['rate']:.0f}/s | 1000/s p99 {paced['p99_ms']:.3f} ms ({paced['rate']:.0f}/s) | "
                      f"ttfb {ttfb if ttfb is None else round(ttfb, 3)} ms | load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)
            result["rounds"].append(rows)
        for label, _, _, proc in targets:
            if proc:
                result["rss"][label] = {"max_rss_under_load_kib": rss_peak[label][0],
                                        "vmhwm_kib": status_kib(proc.pid, "VmHWM")}
        result["load_end"] = os.getloadavg()
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        json.dump(result, open(a.out, "w"), indent=2)
        print(report(result, [n for n, _ in bins], list(bodies)))
    finally:
        for proc in STARTED:
            proc.terminate()
            proc.wait()


def med(result, label, key, field):
    values = [r[label][key][field] if field else r[label][key] for r in result["rounds"]]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(result, names, suffixes):
    load = lambda v: " ".join(f"{x:.1f}" for x in v)
    out = [f"Run of {result['date']}, {len(result['rounds'])} rounds, load average at start "
           f"{load(result['load_start'])}, at end {load(result['load_end'])}.", "",
           "| target | c1 p50 ms | c1 p99 ms | added p50 µs | added p99 µs | c32 req/s | "
           "p99 at 1,000/s ms | added p99 at 1,000/s µs | TTFB added µs |",
           "|---|---|---|---|---|---|---|---|---|"]
    base_ttfb = med(result, "direct", "ttfb_ms", None)
    for suffix in suffixes:
        d = f"direct{suffix}"
        dp50, dp99, dpaced = (med(result, d, "c1", "p50_ms"), med(result, d, "c1", "p99_ms"),
                              med(result, d, "paced", "p99_ms"))
        for label in [d] + [f"{n}{suffix}" for n in names]:
            p50, p99 = med(result, label, "c1", "p50_ms"), med(result, label, "c1", "p99_ms")
            paced = med(result, label, "paced", "p99_ms")
            ttfb = med(result, label, "ttfb_ms", None)
            direct = label == d
            add = lambda x, y: "—" if direct else f"{(x - y) * 1000:+.0f}"
            ttfb_added = "—" if direct or ttfb is None else f"{(ttfb - base_ttfb) * 1000:+.0f}"
            out.append(f"| {label} | {p50:.3f} | {p99:.3f} | {add(p50, dp50)} | {add(p99, dp99)} | "
                       f"{med(result, label, 'c32', 'rate'):.0f} | {paced:.3f} | {add(paced, dpaced)} | {ttfb_added} |")
    out.append("")
    base = names[0]
    for name in names[1:]:
        for suffix in suffixes:
            d = f"direct{suffix}"
            added = lambda n: med(result, f"{n}{suffix}", "c1", "p50_ms") - med(result, d, "c1", "p50_ms")
            ratio_rate = med(result, f"{name}{suffix}", "c32", "rate") / med(result, f"{base}{suffix}", "c32", "rate")
            out.append(f"- {name}{suffix} vs {base}{suffix}: added p50 {added(name) * 1000:+.0f} µs vs "
                       f"{added(base) * 1000:+.0f} µs; c32 throughput × {ratio_rate:.2f}")
    for name in names:
        small = med(result, name, "c1", "p50_ms") - med(result, "direct", "c1", "p50_ms")
        big = med(result, f"{name}+100k", "c1", "p50_ms") - med(result, "direct+100k", "c1", "p50_ms")
        out.append(f"- {name}: 100 KB body adds {big * 1000:.0f} µs at p50, {big / small:.2f}× the small body's "
                   f"{small * 1000:.0f} µs")
    for name, m in result["rss"].items():
        out.append(f"- {name}: RSS under 32-connection load (max sampled, this body size and the ones "
                   f"run before it) **{m['max_rss_under_load_kib'] / 1024:.1f} MiB**; VmHWM at the end "
                   f"{m['vmhwm_kib'] / 1024:.1f} MiB")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
