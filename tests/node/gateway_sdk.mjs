// The official `openai` Node SDK against the isdown gateway (run by tests/gateway_openai_sdk.rs
// with `node --test`). Environment: GATEWAY_URL (http://127.0.0.1:PORT), GATEWAY_KEY (a client
// key), MOCK_A and MOCK_B (the two mock providers behind the route `agent`, `a` first). Only the
// base URL and the key differ from talking to OpenAI itself; SDK retries are off, so every
// behaviour seen is the gateway's.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import OpenAI from "openai";

const { GATEWAY_URL, GATEWAY_KEY, MOCK_A, MOCK_B } = process.env;
const PROMPT = [{ role: "user", content: "ping" }];

async function scenario(mock, name) {
  const response = await fetch(`${mock}/_mock/scenario`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ scenario: name }),
  });
  assert.equal(response.status, 200);
}

function client() {
  return new OpenAI({ baseURL: `${GATEWAY_URL}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0, timeout: 60_000 });
}

/** Reads a stream the way an agent does: text, finish reason and usage. */
async function collect(stream) {
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    const choice = chunk.choices?.[0];
    text += choice?.delta?.content ?? "";
    finish = choice?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { text, finish, usage };
}

beforeEach(async () => {
  await scenario(MOCK_A, "ok");
  await scenario(MOCK_B, "ok");
});

test("plain request", async () => {
  const { data, response } = await client()
    .chat.completions.create({ model: "agent", messages: PROMPT })
    .withResponse();
  assert.equal(response.headers.get("x-isdown-provider"), "a");
  assert.equal(data.choices[0].message.content, "pong");
});

test("streaming request with usage", async () => {
  const stream = await client().chat.completions.create({
    model: "agent",
    messages: PROMPT,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { text, usage } = await collect(stream);
  assert.equal(text, "pong");
  assert.ok(usage.prompt_tokens > 0);
});

test("a complete stream without [DONE] is a complete answer with usage", async () => {
  await scenario(MOCK_A, "complete_without_done");
  const stream = await client().chat.completions.create({
    model: "agent",
    messages: PROMPT,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { text, finish, usage } = await collect(stream);
  assert.equal(text, "pong");
  assert.equal(finish, "stop");
  assert.ok(usage.total_tokens > 0);
});

test("a cut stream raises instead of returning truncated text", async () => {
  await scenario(MOCK_A, "stream_cut");
  const stream = await client().chat.completions.create({ model: "agent", messages: PROMPT, stream: true });
  let text = "";
  await assert.rejects(
    async () => {
      for await (const chunk of stream) text += chunk.choices?.[0]?.delta?.content ?? "";
    },
    (error) => error instanceof OpenAI.APIError && /truncated/.test(error.message),
  );
  assert.equal(text, "pon");
});
