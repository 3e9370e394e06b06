#!/usr/bin/env python3
"""Detection benchmark: how long after a provider breaks does `isdown serve` open an incident and
deliver the alert, at the default settings?

Each trial starts its own `isdown mock-provider` (Kimi style, scenario `ok`), its own
`isdown serve` with a fresh data directory and a config that keeps every default of `[monitor]`
and `[alerting]` (30 s interval, 5 s confirmation, 20 s group window) and adds only: one provider
pointing at the mock with one `chat` monitor, one `webhook` alert channel posting to a receiver
in this script, and (for the gateway mode) one route `bench` → that provider with
`open_on_localhost = true`. Once the monitor is `up` (its first probe just passed), the trial
waits a random time in [0, interval) — a random point of the probe cycle — then switches the mock
to `unavailable`
(HTTP 503 with Moonshot's body on every endpoint) and records:
- break → incident open: the first instant `GET /api/v1/incidents?state=open` lists an incident
  (polled every 100 ms, so up to 0.1 s late);
- break → alert: the instant the webhook receiver accepted the `opened` alert (200).

Modes:
- `probes`: no traffic besides isdown's own probes;
- `gateway`: a client sends 10 req/s through the gateway (`model = "bench"`) to the broken
  provider for the whole trial (each request has its own thread, so a slow answer does not
  lower the rate).

The random points are stratified: trial i of N breaks at a uniformly random moment inside the
i-th of N equal slices of the cycle, so twenty trials cover the whole cycle evenly instead of
clustering by chance (each trial still breaks at a random moment, and the set is still uniform).

Trials run `--parallel` at a time: each has its own processes and ports, and they spend nearly
all their time waiting, so running them side by side does not change what is measured (the
probes, the confirmation and the alert are timers, not CPU work).

Usage: python3 bench/detection.py [--trials 20] [--modes probes,gateway] [--parallel 10]
       [--bin target/release/isdown] [--no-build] [--label NAME]
Prints a Markdown table (median and p95 per mode and measure) and writes every trial to
target/bench/detection-LABEL.json. Everything runs on 127.0.0.1.
"""
import argparse
import http.client
import http.server
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-bench-detection-not-a-real-key-0000"
INTERVAL_S = 30.0
TRIAL_TIMEOUT_S = 150.0

STARTED = []
STARTED_LOCK = threading.Lock()


def cleanup():
    with STARTED_LOCK:
        procs = list(STARTED)
        STARTED.clear()
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def start(args, env=None):
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    with STARTED_LOCK:
        STARTED.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with STARTED_LOCK:
        if proc in STARTED:
            STARTED.remove(proc)


def banner_url(proc, what):
    line = proc.stdout.readline()
    url = next((w for w in line.split() if w.startswith("http://")), None)
    if url is None:
        raise SystemExit(f"{what}: no URL in banner {line!r}")
    # Keep draining stdout so a chatty process never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return url.rstrip("/.,")


def http_json(method, url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class Receiver:
    """One webhook receiver for all trials: `POST /trial/N` records the first `opened` alert."""

    def __init__(self):
        self.lock = threading.Lock()
        self.opened = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                at = time.monotonic()
                try:
                    event = json.loads(body).get("event")
                except ValueError:
                    event = None
                if event == "opened":
                    with receiver.lock:
                        receiver.opened.setdefault(self.path, at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, trial):
        return f"http://127.0.0.1:{self.port}/trial/{trial}"

    def opened_at(self, trial):
        with self.lock:
            return self.opened.get(f"/trial/{trial}")


def config(mock_url, gateway):
    text = (
        "[providers.bench]\n"
        'name = "Bench"\n'
        f'base_url = "{mock_url}/v1"\n'
        'style = "openai"\n'
        'api_key_env = "BENCH_KEY"\n'
        'probe_model = "bench-model"\n'
        "\n[[monitors]]\n"
        'provider = "bench"\n'
        'probes = ["chat"]\n'
        "\n[alerts.hook]\n"
        'kind = "webhook"\n'
        'url_env = "HOOK_URL"\n'
    )
    if gateway:
        text += (
            "\n[[routes]]\n"
            'model = "bench"\n'
            'targets = [{ provider = "bench" }]\n'
            "\n[gateway]\n"
            "open_on_localhost = true\n"
        )
    return text


def traffic(serve_url, stop_event):
    """10 requests a second through the gateway, each on its own thread."""
    host, port = serve_url.removeprefix("http://").split(":")
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "ping"}]})

    def one():
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass

    next_at = time.monotonic()
    while not stop_event.is_set():
        threading.Thread(target=one, daemon=True).start()
        next_at += 0.1
        stop_event.wait(max(0.0, next_at - time.monotonic()))


def trial(index, trials, mode, binary, receiver, seed):
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix=f"isdown-detect-{mode}-{index}-")
    mock = start([binary, "mock-provider", "--listen", "127.0.0.1:0", "--style", "kimi", "--scenario", "ok"])
    serve = None
    stop_traffic = threading.Event()
    try:
        mock_url = banner_url(mock, "mock-provider")
        cfg = os.path.join(work, "isdown.toml")
        with open(cfg, "w") as f:
            f.write(config(mock_url, mode == "gateway"))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "BENCH_KEY": KEY,
            "HOOK_URL": receiver.url(f"{mode}-{index}"),
            "RUST_LOG": "warn",
        }
        serve = start(
            [binary, "serve", "--config", cfg, "--data", os.path.join(work, "data"), "--listen", "127.0.0.1:0"],
            env=env,
        )
        serve_url = banner_url(serve, "isdown serve")
        deadline = time.monotonic() + 60
        while True:
            status = http_json("GET", f"{serve_url}/api/v1/status")
            if any(m.get("state") == "up" for m in status.get("monitors", [])):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("monitor never came up")
            time.sleep(0.2)
        if mode == "gateway":
            threading.Thread(target=traffic, args=(serve_url, stop_traffic), daemon=True).start()
        time.sleep((index + rng.random()) / trials * INTERVAL_S)
        http_json("POST", f"{mock_url}/_mock/scenario", {"scenario": "unavailable"})
        broke = time.monotonic()
        opened = None
        deadline = broke + TRIAL_TIMEOUT_S
        while time.monotonic() < deadline:
            now = time.monotonic()
            if opened is None:
                incidents = http_json("GET", f"{serve_url}/api/v1/incidents?state=open")
                if incidents.get("incidents"):
                    opened = now
            alerted = receiver.opened_at(f"{mode}-{index}")
            if opened is not None and alerted is not None:
                return {
                    "mode": mode,
                    "trial": index,
                    "open_s": round(opened - broke, 3),
                    "alert_s": round(alerted - broke, 3),
                }
            time.sleep(0.1)
        return {"mode": mode, "trial": index, "error": "timed out"}
    except Exception as err:  # a failed trial is reported, not fatal to the run
        return {"mode": mode, "trial": index, "error": str(err)}
    finally:
        stop_traffic.set()
        if serve is not None:
            stop(serve)
        stop(mock)


def p95(values):
    ordered = sorted(values)
    # Nearest-rank p95 (the ceil(0.95 n)-th smallest): with 12 trials, the largest; with 20, the
    # second largest. Small samples make it a pessimistic estimate.
    rank = max(1, -(-95 * len(ordered) // 100))
    return ordered[rank - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--modes", default="probes,gateway")
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "isdown"))
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--label", default="run")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "isdown"], cwd=ROOT, check=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    receiver = Receiver()
    results = []
    try:
        for mode in args.modes.split(","):
            pending = list(range(args.trials))
            while pending:
                batch, pending = pending[: args.parallel], pending[args.parallel :]
                out = [None] * len(batch)
                threads = []
                for slot, index in enumerate(batch):
                    def run(slot=slot, index=index):
                        out[slot] = trial(
                            index, args.trials, mode, args.bin, receiver, args.seed * 1000 + index
                        )
                    thread = threading.Thread(target=run)
                    thread.start()
                    threads.append(thread)
                for thread in threads:
                    thread.join()
                results.extend(out)
                for r in out:
                    print(json.dumps(r), flush=True)
    finally:
        cleanup()

    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench", f"detection-{args.label}.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\n{args.label}: {args.trials} trials per mode\n")
    print("| mode | measure | median | p95 | min | max | failed trials |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        ok = [r for r in results if r["mode"] == mode and "error" not in r]
        failed = sum(1 for r in results if r["mode"] == mode and "error" in r)
        for measure, label in (("open_s", "break → incident open"), ("alert_s", "break → alert accepted")):
            values = [r[measure] for r in ok]
            if not values:
                print(f"| {mode} | {label} | — | — | — | — | {failed} |")
                continue
            print(
                f"| {mode} | {label} | {statistics.median(values):.1f} s | {p95(values):.1f} s"
                f" | {min(values):.1f} s | {max(values):.1f} s | {failed} |"
            )


if __name__ == "__main__":
    main()
