"""The official `openai` Python SDK against the real `isdown serve` and `isdown mock-provider`
binaries: the durable queue through the Files and Batch API.

Run by `tests/queue_batch_sdk.rs`, one case per process: `python batch_sdk.py CASE`, with the
isdown binary in `ISDOWN_BIN`. Each case starts its own mocks and `serve` (free loopback ports,
a temporary data directory), drives them with the SDK exactly as a user would (only `base_url`
points at isdown), and reads the mocks' request logs to see what reached the providers. It
prints `ok CASE` at the end; any failed check raises.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import openai
from openai import OpenAI

BIN = os.environ["ISDOWN_BIN"]
KEY = "gw-batch-key-A-7Hq2xx"
OTHER_KEY = "gw-batch-key-B-9Zr4yy"
ENDED = ("completed", "failed", "expired", "cancelled")


# === processes ===


# Every process a case started, killed when the case ends however it ends: a failed case must
# not leave `serve` or a mock holding the pipe the Rust test reads to its end.
STARTED = []


def start(args, env=None):
    """Starts an isdown subcommand and returns (process, URL from its first stdout line)."""
    proc = subprocess.Popen(
        [BIN] + args,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        env=env or {"PATH": os.environ.get("PATH", "")},
        text=True,
    )
    STARTED.append(proc)
    banner = proc.stdout.readline()
    url = next(w for w in banner.split() if w.startswith("http://"))
    return proc, url


class Mock:
    def __init__(self, style="openai", scenario="ok"):
        self.proc, self.url = start(
            ["mock-provider", "--listen", "127.0.0.1:0", "--style", style, "--scenario", scenario]
        )

    def scenario(self, name, **extra):
        http("POST", f"{self.url}/_mock/scenario", {"scenario": name, **extra})

    def requests(self):
        return http("GET", f"{self.url}/_mock/requests")["requests"]

    def batch_requests(self):
        """Requests that carry a batch line (probes and recovery tests do not)."""
        return [r for r in self.requests() if "batch line" in json.dumps(r.get("body"))]

    def clear(self):
        http("DELETE", f"{self.url}/_mock/requests")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Serve:
    """`isdown serve` on a config and data directory; `restart` keeps the data."""

    def __init__(self, config_text, dir=None):
        self.dir = dir or tempfile.mkdtemp(prefix="isdown-batch-")
        self.config = os.path.join(self.dir, "isdown.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.start()

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GW_KEY": KEY,
            "GW_KEY_B": OTHER_KEY,
            "KEY_P": "sk-upstream-primary-Qw8ErTy2",
            "KEY_F": "sk-upstream-fallback-Qw8ErTy2",
        }
        self.proc, self.url = start(
            ["serve", "--listen", "127.0.0.1:0", "--config", self.config,
             "--data", os.path.join(self.dir, "data")],
            env,
        )
        self.client = OpenAI(base_url=f"{self.url}/v1", api_key=KEY, max_retries=0)
        self.other = OpenAI(base_url=f"{self.url}/v1", api_key=OTHER_KEY, max_retries=0)

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def open_incidents(self):
        return http("GET", f"{self.url}/api/v1/incidents?state=open")["incidents"]


def config(primary, fallback=None, route="kimi-k2", monitor_interval="1h", extra=""):
    """Providers `primary` (and `fallback`), a route over them, two client keys."""
    text = provider_toml("primary", primary, "KEY_P")
    targets = '{ provider = "primary" }'
    if fallback is not None:
        text += provider_toml("fallback", fallback, "KEY_F")
        targets += ', { provider = "fallback" }'
    text += (
        f'[[monitors]]\nprovider = "primary"\nprobes = ["chat"]\ninterval = "{monitor_interval}"\n'
        f'[[routes]]\nmodel = "{route}"\ntargets = [{targets}]\n'
        '[gateway]\nclient_keys_env = ["GW_KEY", "GW_KEY_B"]\n'
    )
    return text + extra


def provider_toml(id, mock, key_env):
    return (
        f'[providers.{id}]\nname = "{id}"\nbase_url = "{mock.url}/v1"\nstyle = "openai"\n'
        f'api_key_env = "{key_env}"\nprobe_model = "test-model"\n'
    )


# === HTTP and waiting ===


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


def http_text(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def wait_for(what, check, timeout=120):
    """Polls `check` every 50 ms until it returns something truthy (observing other processes,
    which offer no event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# === batches ===


def request_line(i, model="kimi-k2", **body):
    return json.dumps({
        "custom_id": f"task-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": f"batch line {i}"}], **body},
    })


def upload(client, lines):
    data = ("\n".join(lines) + "\n").encode()
    return client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch")


def submit(client, lines, window="24h", metadata=None):
    file = upload(client, lines)
    assert file.purpose == "batch" and file.status == "processed", file
    return client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window=window,
        metadata=metadata,
    )


def ended(client, batch_id, timeout=180):
    return wait_for(
        f"batch {batch_id} to end",
        lambda: (lambda b: b if b.status in ENDED else None)(client.batches.retrieve(batch_id)),
        timeout,
    )


def result_lines(client, file_id):
    if file_id is None:
        return []
    return [json.loads(l) for l in client.files.content(file_id).text.splitlines()]


def every_custom_id_once(client, batch, total):
    """The output and error files together hold each custom_id exactly once."""
    output = result_lines(client, batch.output_file_id)
    errors = result_lines(client, batch.error_file_id)
    ids = [l["custom_id"] for l in output + errors]
    assert len(ids) == total, (len(ids), total)
    assert sorted(ids) == sorted(f"task-{i}" for i in range(total)), "each custom_id once"
    assert batch.request_counts.total == total, batch.request_counts
    assert batch.request_counts.completed == len(output), batch.request_counts
    assert batch.request_counts.failed == len(errors), batch.request_counts
    return output, errors


# === cases ===


def case_outage():
    """A 500-line batch submitted while the primary is down waits (the primary gets none of its
    lines while the incident is open), and completes after recovery with 500 results."""
    primary = Mock("kimi", "unavailable")
    serve = Serve(config(primary, monitor_interval="1s"))
    wait_for("the outage incident to open", serve.open_incidents)
    primary.clear()
    batch = submit(serve.client, [request_line(i) for i in range(500)], metadata={"run": "nightly"})
    assert batch.status == "validating", batch.status
    wait_for("validation", lambda: serve.client.batches.retrieve(batch.id).status == "in_progress")

    # People can see the lines wait: on the status page and in /metrics.
    wait_for(
        "the status page to show the waiting lines",
        lambda: "500 queued batch lines wait for it to recover" in http_text(serve.url + "/"),
    )
    metrics = http_text(serve.url + "/metrics")
    assert 'isdown_queue_waiting_lines{provider="primary"} 500' in metrics, metrics
    assert 'isdown_queue_pending_lines{route="kimi-k2"} 500' in metrics, metrics

    # While the incident is open: a snapshot of the primary's log taken before the incident was
    # seen still open holds no batch line. Then the primary recovers.
    snapshots = 0
    while snapshots < 20:
        seen = primary.batch_requests()
        assert serve.open_incidents(), "the incident stays open while the mock fails"
        assert seen == [], f"{len(seen)} batch lines reached the primary during its incident"
        snapshots += 1
        time.sleep(0.1)
    waiting = serve.client.batches.retrieve(batch.id)
    assert waiting.status == "in_progress" and waiting.request_counts.completed == 0, waiting
    primary.scenario("ok")
    while True:
        seen = primary.batch_requests()
        if not serve.open_incidents():
            break
        assert seen == [], "a batch line reached the primary before its incident closed"
        time.sleep(0.05)

    done = ended(serve.client, batch.id)
    assert done.status == "completed", done
    assert done.metadata == {"run": "nightly"}
    assert done.in_progress_at and done.completed_at and done.finalizing_at, done
    output, errors = every_custom_id_once(serve.client, done, 500)
    assert errors == [] and done.error_file_id is None
    for line in output:
        assert line["response"]["status_code"] == 200, line
        assert line["error"] is None
        assert line["id"].startswith("batch_req_")
        assert line["response"]["request_id"]
        assert line["x_isdown"]["provider"] == "primary", line
        assert line["response"]["body"]["model"] == "kimi-k2"
    out_file = serve.client.files.retrieve(done.output_file_id)
    content = serve.client.files.content(done.output_file_id).read()
    assert out_file.purpose == "batch_output" and out_file.bytes == len(content), out_file
    metrics = http_text(serve.url + "/metrics")
    for series in [
        'isdown_queue_lines_total{provider="primary",outcome="done"} 500',
        'isdown_queue_batches_ended_total{status="completed"} 1',
        'isdown_queue_line_wait_seconds_count 500',
    ]:
        assert series in metrics, (series, metrics)
    wait_for("the waiting lines to go", lambda: 'isdown_queue_waiting_lines{provider="primary"} 0'
             in http_text(serve.url + "/metrics"))
    serve.stop()
    primary.stop()


def case_failover():
    """A batch for a route whose primary is down finishes on the fallback, and each output line
    says so: in `response.body.model` and in `x_isdown`."""
    primary = Mock("kimi", "unavailable")
    fallback = Mock("deepseek", "ok")
    text = config(primary, fallback, monitor_interval="1s").replace(
        'targets = [{ provider = "primary" }, { provider = "fallback" }]',
        'targets = [{ provider = "primary" }, { provider = "fallback", model = "deepseek-v4-flash" }]',
    )
    serve = Serve(text)
    wait_for("the outage incident to open", serve.open_incidents)
    primary.clear()
    done = ended(serve.client, submit(serve.client, [request_line(i) for i in range(30)]).id)
    assert done.status == "completed", done
    output, _ = every_custom_id_once(serve.client, done, 30)
    for line in output:
        assert line["x_isdown"] == {"provider": "fallback", "model": "deepseek-v4-flash",
                                    "attempts": 1}, line
        assert line["response"]["body"]["model"] == "deepseek-v4-flash", line
    assert primary.batch_requests() == []
    serve.stop()
    primary.stop()
    fallback.stop()


def case_crash():
    """kill -9 of serve in the middle of a batch, and a restart: each custom_id exactly once."""
    primary = Mock("kimi", "slow")
    primary.scenario("slow", delay_ms=40)
    serve = Serve(config(primary, extra="[queue]\nconcurrency_per_provider = 4\n"))
    batch = submit(serve.client, [request_line(i) for i in range(500)])
    wait_for(
        "a part of the batch to be done",
        lambda: 100 <= serve.client.batches.retrieve(batch.id).request_counts.completed,
    )
    middle = serve.client.batches.retrieve(batch.id)
    serve.kill9()
    assert middle.status == "in_progress" and middle.request_counts.completed < 500, middle
    sent_before = len(primary.batch_requests())
    serve.start()
    done = ended(serve.client, batch.id)
    assert done.status == "completed", done
    output, errors = every_custom_id_once(serve.client, done, 500)
    assert errors == []
    # At least once towards the provider: every line was sent, some (in flight at the kill)
    # twice.
    assert len(primary.batch_requests()) >= 500
    assert sent_before < 500
    serve.stop()
    primary.stop()


def case_rate_limit():
    """A rate limit pauses the provider for its Retry-After, for every line: after the first
    429s no line reaches it again before the announced 2 s, then the batch completes."""
    primary = Mock("kimi", "rate_limited")
    # A Retry-After above max_retry_wait cools the target down in the gateway for that long.
    serve = Serve(config(primary, extra=(
        'max_retry_wait = "1s"\n[queue]\nconcurrency_per_provider = 4\n'
    )))
    batch = submit(serve.client, [request_line(i) for i in range(12)])
    first = wait_for("the first 429s", lambda: primary.batch_requests())
    seen_at = time.monotonic()
    wave = len(first)
    assert wave <= 4, f"{wave} lines in flight, concurrency is 4"
    # Retry-After is 2 s: for the next second (well inside it) nothing more may arrive.
    while time.monotonic() - seen_at < 1.0:
        assert len(primary.batch_requests()) <= 4, "a line was sent during the pause"
        time.sleep(0.05)
    primary.scenario("ok")
    done = ended(serve.client, batch.id)
    assert done.status == "completed", done
    output, _ = every_custom_id_once(serve.client, done, 12)
    assert all(l["response"]["status_code"] == 200 for l in output)
    serve.stop()
    primary.stop()


def case_bad_input():
    """Each bad input gives a failed batch naming the line (1-based), and nothing is sent."""
    primary = Mock("kimi", "ok")
    serve = Serve(config(primary))
    c = serve.client
    good = request_line
    bad_cases = [
        ([good(0), "{not json", good(2)], "invalid_json_line", 2, None),
        ([good(0), good(1), json.dumps({"method": "POST", "url": "/v1/chat/completions",
                                        "body": {"model": "kimi-k2"}})],
         "missing_required_parameter", 3, "custom_id"),
        ([good(0), good(0)], "duplicate_custom_id", 2, "custom_id"),
        ([good(0).replace("/v1/chat/completions", "/v1/embeddings")], "invalid_url", 1, "url"),
        ([good(0).replace('"POST"', '"GET"')], "invalid_method", 1, "method"),
        ([good(0), good(1, model="no-such-route")], "model_not_found", 2, "body.model"),
    ]
    for lines, code, line, param in bad_cases:
        batch = ended(c, submit(c, lines).id)
        assert batch.status == "failed", (code, batch)
        assert batch.failed_at and batch.in_progress_at is None, batch
        errors = batch.errors.data
        assert errors[0].code == code and errors[0].line == line, (code, errors)
        assert errors[0].param == param, (code, errors[0])
        assert batch.request_counts.total == 0 and batch.output_file_id is None

    # One request too many: the 50,001st line is named.
    many = [request_line(i) for i in range(50_001)]
    batch = ended(c, submit(c, many).id)
    assert batch.status == "failed", batch
    assert batch.errors.data[0].code == "max_requests_exceeded", batch.errors
    assert batch.errors.data[0].line == 50_001, batch.errors

    # An empty file.
    batch = ended(c, c.batches.create(input_file_id=upload(c, []).id,
                                      endpoint="/v1/chat/completions",
                                      completion_window="24h").id)
    assert batch.status == "failed" and batch.errors.data[0].code == "empty_file", batch

    # Over 200 MB: 413, and the upload is not kept.
    try:
        c.files.create(file=("big.jsonl", io.BytesIO(b"x" * (200_000_001))), purpose="batch")
        raise AssertionError("an upload over 200 MB was accepted")
    except openai.APIStatusError as e:
        assert e.status_code == 413, e
    assert all(f.filename != "big.jsonl" for f in c.files.list()), "the refused upload stayed"

    # Creation errors answer at once, as the SDK expects them.
    file = upload(c, [good(0)])
    for kwargs, status in [
        ({"input_file_id": "file-nope", "endpoint": "/v1/chat/completions",
          "completion_window": "24h"}, 404),
        ({"input_file_id": file.id, "endpoint": "/v1/embeddings", "completion_window": "24h"}, 400),
        ({"input_file_id": file.id, "endpoint": "/v1/chat/completions",
          "completion_window": "forever"}, 400),
    ]:
        try:
            c.batches.create(**kwargs)
            raise AssertionError(f"accepted {kwargs}")
        except openai.APIStatusError as e:
            assert e.status_code == status, (kwargs, e)
    assert primary.batch_requests() == [], "a failed batch sent nothing"
    serve.stop()
    primary.stop()


def case_request_errors():
    """Lines whose verdict is the request's own fault (bad_request, context_too_long with no
    fitting target, content_filtered) end in the error file once, with the provider's answer,
    and do not hold the batch."""
    for scenario in ("bad_request", "context_too_long", "content_filtered"):
        primary = Mock("kimi", scenario)
        serve = Serve(config(primary))
        done = ended(serve.client, submit(serve.client, [request_line(i) for i in range(5)]).id)
        assert done.status == "completed", (scenario, done)
        output, errors = every_custom_id_once(serve.client, done, 5)
        assert output == [] and done.output_file_id is None, scenario
        for line in errors:
            assert line["response"]["status_code"] == 400, (scenario, line)
            assert line["response"]["body"]["error"], (scenario, line)
            assert line["error"] is None, (scenario, line)
        assert len(primary.batch_requests()) == 5, f"{scenario}: each line was sent once"
        serve.stop()
        primary.stop()


def case_owners():
    """One key cannot see, read, cancel or use another key's files and batches."""
    primary = Mock("kimi", "hang_chat")
    serve = Serve(config(primary))
    mine = submit(serve.client, [request_line(i) for i in range(3)])
    theirs = serve.other
    for call in [
        lambda: theirs.batches.retrieve(mine.id),
        lambda: theirs.batches.cancel(mine.id),
        lambda: theirs.files.retrieve(mine.input_file_id),
        lambda: theirs.files.content(mine.input_file_id),
        lambda: theirs.files.delete(mine.input_file_id),
        lambda: theirs.batches.create(input_file_id=mine.input_file_id,
                                      endpoint="/v1/chat/completions", completion_window="24h"),
    ]:
        try:
            call()
            raise AssertionError("another key's object was reachable")
        except openai.NotFoundError:
            pass
    assert list(theirs.batches.list()) == []
    assert list(theirs.files.list()) == []
    assert [b.id for b in serve.client.batches.list()] == [mine.id]
    # And without a key, nothing at all.
    nobody = OpenAI(base_url=f"{serve.url}/v1", api_key="not-a-configured-key", max_retries=0)
    try:
        nobody.batches.list()
        raise AssertionError("a wrong key listed batches")
    except openai.AuthenticationError:
        pass
    serve.stop()
    primary.stop()


def case_lifecycle():
    """Cancel stops dispatch and keeps finished results; an expired batch keeps its partial
    results; files round-trip; listings page with `after`/`limit`."""
    fast = Mock("deepseek", "ok")
    stuck = Mock("kimi", "hang_chat")
    text = (
        provider_toml("fast", fast, "KEY_P") + provider_toml("stuck", stuck, "KEY_F")
        + '[[monitors]]\nprovider = "fast"\ninterval = "1h"\n'
        + '[[routes]]\nmodel = "quick"\ntargets = [{ provider = "fast" }]\n'
        + '[[routes]]\nmodel = "kimi-k2"\ntargets = [{ provider = "stuck" }]\n'
        + '[gateway]\nclient_keys_env = ["GW_KEY", "GW_KEY_B"]\n'
        + '[queue]\nconcurrency_per_provider = 2\n'
    )
    serve = Serve(text)
    c = serve.client

    # Expiry: the quick lines are answered, the stuck ones expire with the batch.
    lines = [request_line(i, model="quick" if i < 3 else "kimi-k2") for i in range(6)]
    expired = ended(c, submit(c, lines, window="3s").id)
    assert expired.status == "expired" and expired.expired_at, expired
    output, errors = every_custom_id_once(c, expired, 6)
    assert sorted(l["custom_id"] for l in output) == ["task-0", "task-1", "task-2"]
    for line in errors:
        assert line["response"] is None, line
        assert line["error"]["code"] == "batch_expired", line

    # Cancel: what is done stays done, the rest ends as cancelled, nothing more is sent.
    lines = [request_line(i, model="quick" if i < 2 else "kimi-k2") for i in range(8)]
    batch = submit(c, lines)
    wait_for("the quick lines", lambda: c.batches.retrieve(batch.id).request_counts.completed == 2)
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled"), cancelling
    assert cancelling.cancelling_at, cancelling
    stuck_sent = len(stuck.batch_requests())
    cancelled = ended(c, batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at, cancelled
    output, errors = every_custom_id_once(c, cancelled, 8)
    assert len(output) == 2
    assert {l["error"]["code"] for l in errors if l["error"]} <= {"batch_cancelled"}
    assert len(stuck.batch_requests()) == stuck_sent, "a cancelled batch sent more lines"
    try:
        c.batches.cancel(expired.id)
        raise AssertionError("an expired batch was cancelled")
    except openai.APIStatusError as e:
        assert e.status_code == 409, e

    # Files: content as uploaded, listed, deleted; an input in use cannot be deleted.
    file = upload(c, [request_line(0, model="quick"), request_line(1, model="quick")])
    assert c.files.retrieve(file.id).bytes == file.bytes
    assert c.files.content(file.id).text == "\n".join(
        [request_line(0, model="quick"), request_line(1, model="quick")]) + "\n"
    assert file.id in [f.id for f in c.files.list(purpose="batch")]
    assert c.files.delete(file.id).deleted
    try:
        c.files.retrieve(file.id)
        raise AssertionError("a deleted file is still there")
    except openai.NotFoundError:
        pass
    busy = submit(c, [request_line(0, model="kimi-k2")])
    try:
        c.files.delete(busy.input_file_id)
        raise AssertionError("the input of a running batch was deleted")
    except openai.APIStatusError as e:
        assert e.status_code == 409, e
    c.batches.cancel(busy.id)

    # Listing: newest first, pages of `limit` followed by `after`, every batch once.
    ids = [b.id for b in c.batches.list(limit=2)]
    assert ids[:3] == [busy.id, batch.id, expired.id], ids
    first = c.batches.list(limit=2)
    assert first.has_more and len(first.data) == 2
    serve.stop()
    fast.stop()
    stuck.stop()


CASES = {name[len("case_"):]: f for name, f in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    name = sys.argv[1]
    try:
        CASES[name]()
    finally:
        for proc in STARTED:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"ok {name}")
