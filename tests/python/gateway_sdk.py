"""The official `openai` Python SDK against the isdown gateway (run by tests/gateway_openai_sdk.rs).

Environment: GATEWAY_URL (http://127.0.0.1:PORT), GATEWAY_KEY (a client key), MOCK_A and MOCK_B
(the two mock providers behind the route `agent`, `a` first). Only the base URL and the key
differ from talking to OpenAI itself. SDK retries are off, so every behaviour seen is the
gateway's.
"""

import json
import os
import threading
import time
import unittest
import urllib.request

import openai
from openai import OpenAI

GATEWAY = os.environ["GATEWAY_URL"]
KEY = os.environ["GATEWAY_KEY"]
MOCK_A = os.environ["MOCK_A"]
MOCK_B = os.environ["MOCK_B"]

PROMPT = [{"role": "user", "content": "ping"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The current time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    }
]


def scenario(mock, name):
    request = urllib.request.Request(
        mock + "/_mock/scenario",
        data=json.dumps({"scenario": name}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def client():
    return OpenAI(base_url=GATEWAY + "/v1", api_key=KEY, max_retries=0, timeout=60)


class GatewayWithOpenAiSdk(unittest.TestCase):
    def setUp(self):
        scenario(MOCK_A, "ok")
        scenario(MOCK_B, "ok")

    def test_plain_request(self):
        raw = client().chat.completions.with_raw_response.create(model="agent", messages=PROMPT)
        self.assertEqual(raw.headers["x-isdown-provider"], "a")
        self.assertEqual(raw.headers["x-isdown-attempts"], "1")
        completion = raw.parse()
        self.assertEqual(completion.choices[0].message.content, "pong")

    def test_streaming_request_with_usage(self):
        stream = client().chat.completions.create(
            model="agent",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage
        self.assertEqual(text, "pong")
        self.assertIsNotNone(usage)
        self.assertGreater(usage.prompt_tokens, 0)

    def test_tool_call(self):
        completion = client().chat.completions.create(
            model="agent", messages=PROMPT, tools=TOOLS, tool_choice="auto"
        )
        call = completion.choices[0].message.tool_calls[0]
        self.assertEqual(call.function.name, "get_time")
        self.assertIsInstance(json.loads(call.function.arguments), dict)

    def test_failover_on_503(self):
        scenario(MOCK_A, "unavailable")
        raw = client().chat.completions.with_raw_response.create(model="agent", messages=PROMPT)
        self.assertEqual(raw.headers["x-isdown-provider"], "b")
        self.assertEqual(raw.headers["x-isdown-attempts"], "2")
        self.assertEqual(raw.parse().choices[0].message.content, "pong")

    def test_retry_after_is_honoured_on_429(self):
        # `a` says `retry-after: 2` and recovers after 1 s: the gateway waits and stays on `a`.
        scenario(MOCK_A, "rate_limited")
        recover = threading.Timer(1.0, scenario, args=(MOCK_A, "ok"))
        recover.start()
        started = time.monotonic()
        raw = client().chat.completions.with_raw_response.create(model="agent", messages=PROMPT)
        waited = time.monotonic() - started
        recover.join()
        self.assertEqual(raw.headers["x-isdown-provider"], "a")
        self.assertEqual(raw.headers["x-isdown-attempts"], "2")
        self.assertGreaterEqual(waited, 2.0)
        self.assertEqual(raw.parse().choices[0].message.content, "pong")

    def test_complete_stream_without_done_is_a_complete_answer_with_usage(self):
        # `a` ends a complete stream cleanly but sends no `data: [DONE]`.
        scenario(MOCK_A, "complete_without_done")
        stream = client().chat.completions.create(
            model="agent",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, finish = "", None, None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage:
                usage = chunk.usage
        self.assertEqual(text, "pong")
        self.assertEqual(finish, "stop")
        self.assertIsNotNone(usage)
        self.assertGreater(usage.total_tokens, 0)

    def test_cut_stream_raises_instead_of_returning_truncated_text(self):
        scenario(MOCK_A, "stream_cut")
        stream = client().chat.completions.create(model="agent", messages=PROMPT, stream=True)
        text = ""
        with self.assertRaises(openai.APIError) as raised:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
        self.assertEqual(text, "pon")
        self.assertIn("truncated", str(raised.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
