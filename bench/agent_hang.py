#!/usr/bin/env python3
"""Sequential-agent hang benchmark: what a hung primary costs a coding agent behind the gateway.

A coding agent sends one request at a time and waits for each answer. Here the route `agent`
has two targets: `a`, a mock provider whose chat requests hang (`hang_chat`: it accepts them and
never answers, while `GET /models` still answers, as the healthy edge of an overloaded provider
does), and `b`, a mock that answers every request after 3 s (`slow`, `delay_ms` 3000). Both are
`isdown mock-provider` processes on 127.0.0.1; `isdown serve` (the binary under test) runs with
the default gateway timeouts (first token 15 s, whole non-streaming answer 120 s) and one
reachability monitor per provider, as a user who configured cheap monitors would.

Two measurements, each against a fresh `isdown serve` (no state carried over):
1. session: --turns streaming requests (default 9), one after another, each read to its end;
   reports each turn's time, the session's total, and how many chat requests reached `a` —
   from the session itself (no `max_tokens`; the session sends none) and from isdown's own
   recovery tests and monitor probes (they carry the probe's `max_tokens`);
2. non-streaming: two sequential non-streaming requests; reports the time of each.

Ideal session: --turns × 3 s (every turn served by `b`). Prints a Markdown table and writes the
raw figures to target/bench/agent_hang.json (or --out).

Usage: python3 bench/agent_hang.py [--bin target/debug/isdown] [--mock-bin target/debug/isdown]
       [--turns 9] [--label after] [--out target/bench/agent_hang.json]
`--bin` is the `isdown` whose `serve` is measured (e.g. one built from an older commit for the
"before" row); the mocks always come from `--mock-bin`, so both runs see the same upstreams.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_KEY = "gw-bench-agent-key-0000"
UPSTREAM_KEY = "sk-bench-upstream-not-a-real-key-0000"
PROMPT = [{"role": "user", "content": "Edit the file as discussed."}]
STARTED = []


def cleanup():
    for proc in reversed(STARTED):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    STARTED.clear()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(args, log, env=None):
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, env=env
    )
    STARTED.append(proc)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{args[1]} exited before printing its address (rc {proc.wait()}); see {log}")
    url = next(w for w in line.split() if w.startswith("http://")).rstrip("/,")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return proc, url


def admin(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def chats(mock):
    """(session requests, isdown's own requests) that reached the mock's chat endpoint."""
    requests = admin(mock, "/_mock/requests")["requests"]
    chat = [r for r in requests if r["path"].endswith("/chat/completions")]
    own = [r for r in chat if isinstance(r["body"], dict) and "max_tokens" in r["body"]]
    return len(chat) - len(own), len(own)


def ask(gateway, stream):
    """One agent turn: POST, read the whole answer; returns (seconds, provider, status)."""
    host, port = gateway.removeprefix("http://").split(":")
    body = json.dumps({"model": "agent", "messages": PROMPT, "stream": stream})
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    started = time.monotonic()
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"},
    )
    response = conn.getresponse()
    text = response.read().decode()
    took = time.monotonic() - started
    conn.close()
    if stream and (response.status != 200 or "data: [DONE]" not in text):
        raise SystemExit(f"turn failed: {response.status} {text[:300]}")
    return took, response.getheader("x-isdown-provider"), response.status


class Setup:
    """Two mocks and one `isdown serve` in a temp dir."""

    def __init__(self, args, work, name):
        self.work = os.path.join(work, name)
        os.makedirs(self.work)
        mock = [args.mock_bin, "mock-provider", "--listen", "127.0.0.1:0", "--style", "openai"]
        _, self.a = spawn(mock + ["--scenario", "hang_chat"], os.path.join(self.work, "a.log"))
        _, self.b = spawn(mock + ["--scenario", "slow"], os.path.join(self.work, "b.log"))
        admin(self.b, "/_mock/scenario", {"scenario": "slow", "delay_ms": 3000})
        config = os.path.join(self.work, "isdown.toml")
        with open(config, "w") as f:
            for p, url in (("a", self.a), ("b", self.b)):
                f.write(
                    f'[providers.{p}]\nname = "{p}"\nbase_url = "{url}/v1"\nstyle = "openai"\n'
                    f'api_key_env = "KEY_{p.upper()}"\nprobe_model = "m"\n'
                    f'[[monitors]]\nprovider = "{p}"\nprobes = ["reachability"]\n'
                )
            f.write(
                '[[routes]]\nmodel = "agent"\ntargets = [{ provider = "a" }, { provider = "b" }]\n'
                '[gateway]\nclient_keys_env = ["GW_KEY"]\n'
            )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GW_KEY": CLIENT_KEY,
            "KEY_A": UPSTREAM_KEY,
            "KEY_B": UPSTREAM_KEY,
        }
        args_serve = [args.bin, "serve", "--listen", "127.0.0.1:0", "--config", config, "--data",
                      os.path.join(self.work, "data")]
        self.serve, self.url = spawn(args_serve, os.path.join(self.work, "serve.log"), env)

    def stop(self):
        cleanup()


def session(args, work):
    setup = Setup(args, work, "session")
    try:
        turns = []
        for turn in range(args.turns):
            took, provider, _ = ask(setup.url, stream=True)
            turns.append({"turn": turn + 1, "seconds": round(took, 2), "provider": provider})
            print(f"# turn {turn + 1}: {took:.2f} s via {provider}", file=sys.stderr)
        live, own = chats(setup.a)
        return {
            "turns": turns,
            "total_s": round(sum(t["seconds"] for t in turns), 2),
            "session_requests_at_primary": live,
            "isdown_requests_at_primary": own,
        }
    finally:
        setup.stop()


def non_streaming(args, work):
    setup = Setup(args, work, "non_streaming")
    try:
        out = []
        for n in range(2):
            took, provider, status = ask(setup.url, stream=False)
            out.append({"request": n + 1, "seconds": round(took, 2), "provider": provider,
                        "status": status})
            print(f"# non-streaming {n + 1}: {took:.2f} s via {provider}", file=sys.stderr)
        return out
    finally:
        setup.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "isdown"))
    parser.add_argument("--mock-bin", default=os.path.join(ROOT, "target", "debug", "isdown"))
    parser.add_argument("--turns", type=int, default=9)
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "agent_hang.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with tempfile.TemporaryDirectory(prefix="isdown-agent-hang-") as work:
            result = {
                "label": args.label,
                "bin": args.bin,
                "turns": args.turns,
                "session": session(args, work),
                "non_streaming": non_streaming(args, work),
            }
    finally:
        cleanup()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    s, ns = result["session"], result["non_streaming"]
    print("| run | session (s) | ideal (s) | session requests at the hung primary | isdown's own "
          "(tests, probes) | non-streaming 1st (s) | non-streaming 2nd (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.label} | {s['total_s']:.1f} | {3 * args.turns} | "
          f"{s['session_requests_at_primary']} | {s['isdown_requests_at_primary']} | "
          f"{ns[0]['seconds']:.1f} | {ns[1]['seconds']:.1f} |")


if __name__ == "__main__":
    main()
