#!/usr/bin/env python3
"""Batch benchmark: a 50,000-line batch through the durable queue, and the gateway's own
throughput measured in the same run, against `isdown mock-provider` with no injected latency.

In one run, on this machine, with the release binary:
1. **Gateway throughput** (the baseline): a fresh `isdown serve` in front of one mock
   (`--style openai --scenario ok`, answers at once); wrk sends `POST /v1/chat/completions`
   with as many connections as the queue's concurrency (--concurrency, default 16, the
   default of `[queue] concurrency_per_provider`) and again with 64, for --duration seconds each
   after a 2 s warm-up.
2. **The batch**: another fresh `serve` (same config, empty data directory). `isdown batch
   submit` uploads a JSONL file of --lines requests (default 50,000, the most a batch may hold;
   ~250 bytes each) and creates the batch; the script polls `GET /v1/batches/{id}` every 50 ms
   and times validation (created → in_progress) and the run (in_progress → completed). Lines/s
   = lines / run time. It also reads, for `serve` alone: peak RSS (VmHWM from /proc), CPU seconds
   over the run, and the database's bytes on disk (file + WAL) before the upload, after it,
   and after the batch ended and `serve` stopped (which folds the WAL into the file) — divided
   by the number of lines.
3. With --big, the same with lines padded to ~3,900 bytes (a ~195 MB file, just under the
   Batch API's 200 MB), to show that peak RSS does not grow with the file.

Prints a Markdown table and writes the figures to target/bench/batch.json. Everything runs on
127.0.0.1; wrk must be on the PATH.

With --delay (e.g. 200ms) the mock answers every request that much later, as a provider does:
then both the gateway and the queue are bound by the concurrency, and the ratio shows what the
queue's own overhead costs against a realistic answer time.

Usage: python3 bench/batch.py [--lines 50000] [--concurrency 16] [--duration 10] [--big]
       [--delay 200ms]
       [--no-build | --bin PATH]   (see BENCHMARKS.md for results)
"""
import argparse
import json
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
OUT = os.path.join(ROOT, "target", "bench", "batch.json")
TICK = os.sysconf("SC_CLK_TCK")
KEY = "gw-bench-key-0000-not-secret"
UPSTREAM_KEY = "sk-bench-upstream-not-a-real-key-0000"

STARTED = []


def cleanup():
    for proc in reversed(STARTED):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    STARTED.clear()


def start(args, env=None):
    proc = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    STARTED.append(proc)
    banner = proc.stdout.readline()
    url = next(w for w in banner.split() if w.startswith("http://"))
    return proc, url


def serve(mock_url, concurrency, data):
    config = os.path.join(data, "isdown.toml")
    with open(config, "w") as f:
        f.write(
            f'[providers.a]\nname = "a"\nbase_url = "{mock_url}/v1"\nstyle = "openai"\n'
            f'api_key_env = "KEY_A"\nprobe_model = "bench"\n'
            '[[monitors]]\nprovider = "a"\ninterval = "1h"\n'
            '[[routes]]\nmodel = "bench"\ntargets = [{ provider = "a" }]\n'
            '[gateway]\nclient_keys_env = ["GW_KEY"]\n'
            f'[queue]\nconcurrency_per_provider = {concurrency}\n'
        )
    env = {"PATH": os.environ.get("PATH", ""), "GW_KEY": KEY, "KEY_A": UPSTREAM_KEY}
    return start(["serve", "--listen", "127.0.0.1:0", "--config", config,
                  "--data", os.path.join(data, "data")], env)


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def db_bytes(data):
    total = 0
    for name in ("isdown.db", "isdown.db-wal"):
        path = os.path.join(data, "data", name)
        if os.path.exists(path):
            total += os.path.getsize(path)
    return total


def get(url):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wrk(url, connections, duration):
    script = os.path.join(tempfile.mkdtemp(prefix="isdown-bench-"), "post.lua")
    with open(script, "w") as f:
        f.write(
            'wrk.method = "POST"\n'
            'wrk.body = \'{"model":"bench","messages":[{"role":"user","content":"ping"}]}\'\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
        )
    target = f"{url}/v1/chat/completions"
    threads = str(min(2, connections))
    subprocess.run(["wrk", "-t", threads, "-c", str(connections), "-d", "2s", "-s", script, target],
                   capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{duration}s", "-s", script, target],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"connections": connections, "requests_per_s": rate,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": errors.group(0) if errors else None}


def write_lines(path, lines, pad):
    padding = "x" * pad
    with open(path, "w") as f:
        for i in range(lines):
            f.write(json.dumps({
                "custom_id": f"row-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "bench", "messages": [
                    {"role": "user", "content": f"Summarise document {i}. {padding}"}]},
            }) + "\n")
    return os.path.getsize(path)


def run_batch(mock_url, args, pad):
    data = tempfile.mkdtemp(prefix="isdown-bench-batch-")
    proc, url = serve(mock_url, args.concurrency, data)
    time.sleep(1)
    requests = os.path.join(data, "requests.jsonl")
    file_bytes = write_lines(requests, args.lines, pad)
    before = db_bytes(data)
    cpu_before = cpu_seconds(proc.pid)
    env = {"PATH": os.environ.get("PATH", ""), "ISDOWN_GATEWAY_KEY": KEY}
    submitted_at = time.monotonic()
    out = subprocess.run([BIN, "batch", "--url", url, "--json", "submit", requests],
                         capture_output=True, text=True, env=env, check=True).stdout
    uploaded_at = time.monotonic()
    batch_id = json.loads(out)["id"]
    started_at = None
    while True:
        batch = get(f"{url}/v1/batches/{batch_id}")
        now = time.monotonic()
        if started_at is None and batch["status"] != "validating":
            started_at = now
            after_upload = db_bytes(data)
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            ended_at = now
            break
        time.sleep(0.05)
    cpu = cpu_seconds(proc.pid) - cpu_before
    peak = proc_status(proc.pid, "VmHWM")
    with_wal = db_bytes(data)
    # A graceful stop closes the database, which folds the WAL into the file.
    proc.terminate()
    proc.wait(timeout=60)
    after = db_bytes(data)
    shutil.rmtree(data, ignore_errors=True)
    counts = batch["request_counts"]
    run_s = ended_at - started_at
    result = {
        "lines": args.lines,
        "file_bytes": file_bytes,
        "status": batch["status"],
        "completed": counts["completed"],
        "failed": counts["failed"],
        "upload_and_create_s": round(uploaded_at - submitted_at, 3),
        "validation_s": round(started_at - uploaded_at, 3),
        "run_s": round(run_s, 3),
        "lines_per_s": round(args.lines / run_s, 1),
        "end_to_end_s": round(ended_at - submitted_at, 3),
        "serve_peak_rss_bytes": peak,
        "serve_cpu_s": round(cpu, 2),
        "db_bytes_before": before,
        "db_bytes_after_upload": after_upload,
        "db_bytes_after_batch_with_wal": with_wal,
        "db_bytes_after_batch": after,
        "db_bytes_per_line": round((after - before) / args.lines, 1),
        "db_bytes_per_line_input": round((after_upload - before) / args.lines, 1),
    }
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--big", action="store_true")
    parser.add_argument("--delay", help="answer every request after this long (the mock's "
                        "`slow` scenario, e.g. 200ms) instead of at once")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--bin", help="an isdown binary to use instead of building one")
    args = parser.parse_args()
    global BIN
    if args.bin:
        BIN = os.path.abspath(args.bin)
    elif not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "isdown"], cwd=ROOT, check=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        scenario = ["--scenario", "slow", "--delay", args.delay] if args.delay else \
            ["--scenario", "ok"]
        mock, mock_url = start(["mock-provider", "--listen", "127.0.0.1:0", "--style", "openai",
                                *scenario])
        gateway_data = tempfile.mkdtemp(prefix="isdown-bench-gw-")
        gateway, gateway_url = serve(mock_url, args.concurrency, gateway_data)
        time.sleep(1)
        throughput = [wrk(gateway_url, c, args.duration) for c in (args.concurrency, 64)]
        gateway.terminate()
        gateway.wait(timeout=30)
        shutil.rmtree(gateway_data, ignore_errors=True)
        small = run_batch(mock_url, args, pad=0)
        big = run_batch(mock_url, args, pad=3_650) if args.big else None
    finally:
        cleanup()
    figures = {"gateway": throughput, "batch": small, "big_batch": big,
               "concurrency": args.concurrency}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(figures, f, indent=2)
    same = throughput[0]["requests_per_s"]
    print(f"gateway, {args.concurrency} connections: {same:,.0f} req/s; "
          f"64 connections: {throughput[1]['requests_per_s']:,.0f} req/s")
    print("| batch | file | validation | run | lines/s | vs gateway | serve peak RSS | "
          "serve CPU s | DB bytes/line (input; total) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, b in (("small lines", small), ("~3.9 KB lines", big)):
        if b is None:
            continue
        print(f"| {b['lines']:,} lines, {name} ({b['status']}, {b['completed']:,} done) "
              f"| {b['file_bytes'] / 1e6:.1f} MB | {b['validation_s']:.2f} s | {b['run_s']:.2f} s "
              f"| {b['lines_per_s']:,.0f} | {b['lines_per_s'] / same:.2f} × "
              f"| {b['serve_peak_rss_bytes'] / 2**20:.1f} MiB | {b['serve_cpu_s']:.1f} "
              f"| {b['db_bytes_per_line_input']:,.0f}; {b['db_bytes_per_line']:,.0f} |")
    print(f"raw figures: {OUT}")


if __name__ == "__main__":
    main()
