#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/<target>/ (see fuzz/README.md).

Realistic inputs, from the repository's own knowledge:
  classifier       every answer `isdown mock-provider` gives (each style x scenario: GET /models,
                   chat, streamed chat, tool call), and every row of the classifier's table tests
                   (src/verdict/tests.rs), as "STATUS\\nheader: value\\n\\nbody"
  sse_reader       the mock's streams, whole and cut into chunks
  config           src/config/template.toml, the TOML examples of README.md, and the texts of
                   the config tests (src/config/tests.rs)
  gateway_request  chat requests as OpenAI/Anthropic SDKs and agents send them
  status_sources   every document of the corroboration tests (Statuspage summaries and incident
                   lists, OpenRouter endpoints, RSS, Atom and JSON feeds), each behind each of
                   the four kind bytes
  batch_jsonl      Batch API input files for /v1/chat/completions as SDKs write them, and each
                   way a file goes wrong (duplicate custom_id, wrong method or url, no body or
                   model, an unknown model, CRLF, blank lines, no final line end, not UTF-8, a
                   line over the limit), whole and cut into chunks

Usage: python3 fuzz/seeds.py PATH/TO/isdown   (a built binary, for its mock provider)
Then `cargo fuzz cmin` merges them into fuzz/corpus/ (README.md, "Corpus").
"""

import hashlib
import http.client
import json
import pathlib
import re
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"

STYLES = ["kimi", "deepseek", "openai", "anthropic", "zhipu", "dashscope", "openrouter"]
# Left out: scenarios that never answer (hang, hang_chat), answer late (slow) or not at all
# (reset). stream_stall and keepalive_only are read until a short timeout.
SKIP = {"hang", "hang_chat", "slow", "reset"}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def write(target, data):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def answer_text(status, headers, body):
    head = "".join(f"{k.lower()}: {v}\n" for k, v in headers if k.lower() != "date")
    return f"{status}\n{head}\n".encode() + body


def fetch(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.5)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"content-type": "application/json",
                                                    "authorization": "Bearer sk-mock-key-0000"})
    response = conn.getresponse()
    chunks = []
    # keepalive_only never ends: stop reading after 2 s in all.
    until = time.monotonic() + 2
    try:
        while time.monotonic() < until and (chunk := response.read1(65536)):
            chunks.append(chunk)
    except (socket.timeout, TimeoutError, http.client.IncompleteRead):
        pass
    conn.close()
    return response.status, response.getheaders(), b"".join(chunks)


def mock_answers(binary):
    mock = subprocess.Popen([binary, "mock-provider", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in mock.stdout:
            if found := re.search(r"127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
                break
        scenarios = json.loads(fetch(port, "POST", "/_mock/scenario", {"scenario": "?"})[2])
        for style in STYLES:
            for scenario in scenarios["error"]["valid_scenarios"]:
                if scenario in SKIP:
                    continue
                fetch(port, "POST", "/_mock/scenario", {"scenario": scenario, "style": style})
                path = "/v1/messages" if style == "anthropic" else "/v1/chat/completions"
                chat = {"model": "kimi-k2.6", "max_tokens": 16,
                        "messages": [{"role": "user", "content": "Say OK"}]}
                requests = [("GET", "/v1/models", None), ("POST", path, chat),
                            ("POST", path, dict(chat, stream=True)),
                            ("POST", path, dict(chat, tools=TOOLS))]
                for method, url, body in requests:
                    try:
                        status, headers, data = fetch(port, method, url, body)
                    except (OSError, http.client.HTTPException):
                        continue
                    write("classifier", answer_text(status, headers, data))
                    if body is not None and body.get("stream"):
                        write("sse_reader", b"\x00" + data)
                        # Cut into chunks of 7, 1 and 0 bytes, then the rest.
                        write("sse_reader", b"\x03\x07\x01\x00" + data)
    finally:
        mock.kill()
        mock.wait()


def table_rows():
    text = (ROOT / "src/verdict/tests.rs").read_text()
    rows = re.findall(r'\(\s*"[a-z0-9_]+",\s*(\d+),\s*r#"(.*?)"#,\s*V::', text, re.S)
    for status, body in rows:
        write("classifier", f"{status}\n\n{body}".encode())
    # A few header-borne waits and a key the exact-value scrub must catch (the fuzz target
    # registers fuzzSecretKEYvalue as a secret).
    for head in ["retry-after: 7", "retry-after-ms: 1500",
                 "retry-after: Wed, 21 Oct 2099 07:28:00 GMT",
                 "x-ratelimit-remaining-requests: 0\nx-ratelimit-reset-requests: 6m0s",
                 "anthropic-ratelimit-tokens-remaining: 0\n"
                 "anthropic-ratelimit-tokens-reset: 2099-01-01T00:00:00Z"]:
        write("classifier", f"429\n{head}\n\n{{\"error\":{{\"message\":\"slow down\"}}}}".encode())
    write("classifier", b'401\n\n{"error":{"message":"Incorrect API key provided: '
                        b'fuzzSecretKEYvalue","type":"invalid_request_error"}}')


def configs():
    write("config", (ROOT / "src/config/template.toml").read_bytes())
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```toml\n(.*?)```", readme, re.S):
        write("config", block.encode())
    tests = (ROOT / "src/config/tests.rs").read_text()
    for literal in re.findall(r'r#"(.*?)"#', tests, re.S):
        write("config", literal.encode())
    for literal in re.findall(r'load\(\s*"((?:[^"\\]|\\.)*)"', tests):
        write("config", literal.encode().decode("unicode_escape").encode())


def gateway_requests():
    user = {"role": "user", "content": "What is the weather in Paris?"}
    bodies = [
        {"model": "fast", "messages": [user]},
        {"model": "kimi-k2.6", "messages": [{"role": "system", "content": "Be brief."}, user],
         "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.6},
        {"model": "deepseek-chat", "messages": [user], "tools": TOOLS, "tool_choice": "auto"},
        {"model": "glm-4.6", "messages": [
            user, {"role": "assistant", "content": None, "reasoning_content": "Look it up.",
                   "tool_calls": [{"id": "call_1", "type": "function", "function": {
                       "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C, cloudy"}]},
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
         "max_tokens": 300},
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "你好，世界"}],
         "functions": [{"name": "f", "parameters": {}}], "stream": False},
    ]
    for body in bodies:
        write("gateway_request", json.dumps(body).encode())
    first = json.dumps(bodies[1]).encode()
    for header in ["x-isdown-timeout: 20s", "x-isdown-timeout: 1500ms", "x-isdown-timeout: 2.5",
                   "x-isdown-timeout: 1h 30m", "content-type: application/json\nx-isdown-timeout: 0"]:
        write("gateway_request", header.encode() + b"\n\n" + first)


def status_sources():
    # Raw string literals of the corroboration tests: r#"..."# and br#"..."#.
    literal = re.compile(r'b?r(#+)"(.*?)"\1', re.S)
    for path in sorted((ROOT / "src" / "corroborate").rglob("*.rs")) + sorted(
            (ROOT / "tests").glob("*corroboration*.rs")):
        for match in literal.finditer(path.read_text()):
            text = match.group(2).encode()
            if len(text) < 8:
                continue
            for kind in range(4):
                write("status_sources", bytes([kind]) + text)

    # The documented shapes, as the real pages answer (Statuspage v2, OpenRouter).
    incident = {"id": "k2a9", "name": "Elevated errors on the Open API", "status": "investigating",
                "impact": "major", "created_at": "2026-11-30T23:40:00.000Z",
                "updated_at": "2026-11-30T23:52:00.000Z", "resolved_at": None,
                "shortlink": "https://stspg.io/k2a9",
                "components": [{"id": "c1", "name": "Open API", "status": "major_outage"}],
                "incident_updates": [{"status": "investigating", "body": "We are looking.",
                                      "created_at": "2026-11-30T23:52:00.000Z"}]}
    summary = {"page": {"id": "p", "name": "Moonshot", "url": "https://status.moonshot.cn",
                        "updated_at": "2026-11-30T23:52:00.000Z"},
               "status": {"indicator": "major", "description": "Partial System Outage"},
               "components": [{"id": "c1", "name": "Open API", "status": "major_outage",
                               "group": False, "only_show_if_degraded": False},
                              {"id": "c2", "name": "K2 Model", "status": "operational"}],
               "incidents": [incident], "scheduled_maintenances": []}
    resolved = dict(incident, status="resolved", resolved_at="2026-12-01T00:30:00.000Z")
    endpoints = {"data": {"id": "moonshotai/kimi-k2.6", "name": "Kimi K2.6", "endpoints": [
        {"name": "Moonshot AI | moonshotai/kimi-k2.6", "provider_name": "Moonshot AI",
         "tag": "moonshotai", "status": 0, "uptime_last_30m": 99.1, "context_length": 262144},
        {"name": "Groq | moonshotai/kimi-k2.6", "provider_name": "Groq", "tag": "groq",
         "status": -2, "uptime_last_30m": 41.0, "context_length": 131072}]}}
    for kind, doc in [(0, summary), (1, {"page": summary["page"], "incidents": [incident, resolved]}),
                      (2, endpoints)]:
        write("status_sources", bytes([kind]) + json.dumps(doc).encode())


def batch_request(custom_id, model="kimi-k2.6", content="Say OK", **envelope):
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 16,
                     "messages": [{"role": "user", "content": content}]}}
    line.update(envelope)
    return json.dumps(line, ensure_ascii=False).encode()


def batch_files():
    # The fuzz target's first byte: bits 3-4 pick the longest line accepted (16, 256, 4096 or
    # 1 MiB bytes), the low 3 bits how many chunk lengths follow.
    usual, large = 2 << 3, 3 << 3
    good = [batch_request("request-1"), batch_request("request-2", "deepseek-chat"),
            batch_request("request-3", "glm-4.6", "你好，世界"),
            batch_request("request-4", "kimi/kimi-k2.6", "Use a tool")]
    without_body = json.loads(good[0])
    del without_body["body"]
    without_model = json.loads(good[0])
    del without_model["body"]["model"]
    files = [
        b"\n".join(good) + b"\n",
        b"\n".join(good),                                          # no final line end
        b"\r\n".join(good) + b"\r\n",                                # CRLF
        b"\n\n" + good[0] + b"\n   \r\n\n" + good[1] + b"\n\n",       # blank lines
        good[0] + b"\n" + good[1] + b"\n" + batch_request("request-1") + b"\n",  # duplicate id
        good[0] + b"\n" + batch_request("request-9", method="GET") + b"\n",
        good[0] + b"\n" + batch_request("request-9", url="/v1/embeddings") + b"\n",
        good[0] + b"\n" + json.dumps(without_body).encode() + b"\n",
        good[0] + b"\n" + json.dumps(without_model).encode() + b"\n",
        good[0] + b"\n" + batch_request("request-9", "no-such-model") + b"\n",
        good[0] + b"\n" + batch_request(7) + b"\n" + batch_request("") + b"\n",
        good[0] + b"\n{\"custom_id\": \"x\xff\xfe\"}\n" + b"[1, 2]\n{not json\n",  # not UTF-8
        b"",
        b"\n \r\n\t\n",
    ]
    for data in files:
        write("batch_jsonl", bytes([usual]) + data)
        # Cut into chunks of 7, 1, 0 and 13 bytes, then the rest.
        write("batch_jsonl", bytes([usual | 4, 7, 1, 0, 13]) + data)
    # A line over the limit of 4096 bytes, then the same file under a limit of 1 MiB.
    huge = good[0] + b"\n" + batch_request("request-9", content="x" * 6000) + b"\n" + good[1]
    write("batch_jsonl", bytes([usual]) + huge)
    write("batch_jsonl", bytes([large | 2, 200, 13]) + huge)


if __name__ == "__main__":
    mock_answers(sys.argv[1])
    table_rows()
    configs()
    gateway_requests()
    status_sources()
    batch_files()
    for folder in sorted(OUT.iterdir()):
        print(folder.name, len(list(folder.iterdir())))
