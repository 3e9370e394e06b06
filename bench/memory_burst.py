#!/usr/bin/env python3
"""Memory under a burst of large requests: N concurrent requests of SIZE MB each from a valid
client to `isdown serve`'s gateway (in front of one `isdown mock-provider`, scenario `ok`), and
the gateway's resident memory during the burst (VmHWM, the peak) and after it (VmRSS 1 s and
10 s after the last answer), with the count of answers by status.

Each variant is one `isdown serve` process: a binary, optionally with an allocator preloaded
(`LD_PRELOAD`, e.g. Debian's libjemalloc2 / libmimalloc2.0 — to choose an allocator by
measurement without rebuilding) and extra environment (glibc tunables such as
`MALLOC_ARENA_MAX=2`). Variants run one after another, --rounds times, interleaved; medians are
reported. Everything runs on 127.0.0.1.

Usage: python3 bench/memory_burst.py --variant NAME=BIN[:PRELOAD][:ENV=V,...] ... [--requests 100]
       [--size-mb 15] [--rounds 3]
"""
import argparse
import concurrent.futures
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

KEY = "gw-bench-client-key-7Tq2"


def status_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def banner_url(proc):
    line = proc.stdout.readline()
    url = next(w for w in line.split() if w.startswith("http://")).rstrip("/,")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return url


def post(url, body):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers={
            "content-type": "application/json", "authorization": f"Bearer {KEY}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError as e:
        return type(e).__name__
    finally:
        conn.close()


def one(variant, mock_url, body, n, work):
    name, spec = variant.split("=", 1)
    parts = spec.split(":")
    binary, preload = parts[0], (parts[1] if len(parts) > 1 else "")
    env = dict(os.environ, BENCH_UPSTREAM_KEY="sk-bench-upstream-0000", GW_KEY=KEY, RUST_LOG="warn")
    if preload:
        env["LD_PRELOAD"] = preload
    for pair in (parts[2].split(",") if len(parts) > 2 and parts[2] else []):
        k, v = pair.split("=", 1)
        env[k] = v
    cfg = os.path.join(work, "isdown.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[providers.up]\nbase_url = "{mock_url}/v1"\napi_key_env = "BENCH_UPSTREAM_KEY"\n'
            'probe_model = "bench"\n'
            '[[monitors]]\nprovider = "up"\nprobes = ["reachability"]\ninterval = "300s"\n'
            '[[routes]]\nmodel = "bench"\ntargets = [{ provider = "up" }]\n'
            '[gateway]\nclient_keys_env = ["GW_KEY"]\n'
        )
    data = tempfile.mkdtemp(dir=work)
    serve = subprocess.Popen([binary, "serve", "--config", cfg, "--data", data, "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = banner_url(serve)
        post(url, b'{"model":"bench","messages":[{"role":"user","content":"ping"}]}')
        before = status_kib(serve.pid, "VmRSS")
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            statuses = list(pool.map(lambda _: post(url, body), range(n)))
        peak = status_kib(serve.pid, "VmHWM")
        time.sleep(1)
        after1 = status_kib(serve.pid, "VmRSS")
        time.sleep(9)
        after10 = status_kib(serve.pid, "VmRSS")
        counts = {}
        for s in statuses:
            counts[str(s)] = counts.get(str(s), 0) + 1
        return name, {"before": before, "peak": peak, "after1": after1, "after10": after10, "statuses": counts}
    finally:
        serve.terminate()
        serve.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--mock", default=None, help="binary for the mock provider (default: first variant's)")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--size-mb", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="isdown-membench-")
    mock_bin = a.mock or a.variant[0].split("=", 1)[1].split(":")[0]
    mock = subprocess.Popen([mock_bin, "mock-provider", "--listen", "127.0.0.1:0", "--style", "openai",
                             "--scenario", "ok"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    mock_url = banner_url(mock)
    content = "x" * int(a.size_mb * 1024 * 1024)
    body = ('{"model":"bench","messages":[{"role":"user","content":"' + content + '"}]}').encode()
    results = {}
    try:
        for r in range(a.rounds):
            order = a.variant[r % len(a.variant):] + a.variant[:r % len(a.variant)]
            for variant in order:
                # The mock keeps the newest 1,000 request bodies: clear them between runs.
                subprocess.run(["curl", "-s", "-X", "DELETE", f"{mock_url}/_mock/requests"], capture_output=True)
                name, res = one(variant, mock_url, body, a.requests, work)
                results.setdefault(name, []).append(res)
                print(f"# round {r + 1} {name}: before {res['before'] / 1024:.0f} MiB, peak "
                      f"{res['peak'] / 1024:.0f} MiB, after 1 s {res['after1'] / 1024:.0f} MiB, after 10 s "
                      f"{res['after10'] / 1024:.0f} MiB, {res['statuses']} (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
    finally:
        mock.terminate()
        mock.wait()
    print(f"| variant | peak RSS MiB | RSS 1 s after MiB | RSS 10 s after MiB | answers (last round) |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        med = lambda k: statistics.median(x[k] for x in runs) / 1024
        print(f"| {name} | {med('peak'):.0f} | {med('after1'):.0f} | {med('after10'):.0f} | {runs[-1]['statuses']} |")


if __name__ == "__main__":
    main()
