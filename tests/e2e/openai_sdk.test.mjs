// End-to-end: the official `openai` npm package against a running turnout gateway.
//
// run-openai-sdk.sh starts a simulator and a gateway and passes:
//   TURNOUT_E2E_BASE_URL        e.g. http://127.0.0.1:41234/v1 (required)
//   TURNOUT_E2E_MODEL           the model name clients ask for (default: smart)
//   TURNOUT_E2E_UPSTREAM_MODEL  the model the route sends upstream (default: sim-large)
//   TURNOUT_E2E_TARGET          expected x-turnout-target (default: sim/<upstream model>)
//   TURNOUT_E2E_UPSTREAM_KIND   openai | anthropic (only labels the test names)
//
// Run by hand:  TURNOUT_E2E_BASE_URL=http://127.0.0.1:8080/v1 node --test openai_sdk.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.TURNOUT_E2E_BASE_URL;
if (!baseURL) {
  throw new Error('TURNOUT_E2E_BASE_URL is not set (run tests/e2e/run-openai-sdk.sh TURNOUT_BIN)');
}
const MODEL = process.env.TURNOUT_E2E_MODEL || 'smart';
const UPSTREAM_MODEL = process.env.TURNOUT_E2E_UPSTREAM_MODEL || 'sim-large';
const TARGET = process.env.TURNOUT_E2E_TARGET || `sim/${UPSTREAM_MODEL}`;
const KIND = process.env.TURNOUT_E2E_UPSTREAM_KIND || 'openai';

// Client auth is off in the test config: any key does. No retries, so a failure
// shows the gateway's first answer instead of being papered over.
const client = new OpenAI({ apiKey: 'sk-e2e-any', baseURL, maxRetries: 0, timeout: 20_000 });

const messages = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Say hello to the end-to-end test.' },
];

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          unit: { type: 'string', enum: ['c', 'f'] },
        },
        required: ['city'],
      },
    },
  },
];

// The gateway may answer with the name the client asked for or with the
// upstream's model name; both are reasonable, anything else is not.
function assertModelEcho(model) {
  assert.equal(typeof model, 'string');
  assert.ok(
    model === MODEL || model === UPSTREAM_MODEL || model.startsWith(UPSTREAM_MODEL),
    `response model ${JSON.stringify(model)} is neither ${MODEL} nor ${UPSTREAM_MODEL}`,
  );
}

function assertTurnoutHeaders(response) {
  assert.equal(response.headers.get('x-turnout-route'), MODEL);
  assert.equal(response.headers.get('x-turnout-target'), TARGET);
  assert.ok(response.headers.get('x-request-id'), 'x-request-id header missing');
}

test(`[${KIND}] chat.completions.create, non-streaming`, async () => {
  const { data: completion, response } = await client.chat.completions
    .create({ model: MODEL, messages, max_tokens: 64 })
    .withResponse();
  assert.equal(response.status, 200);
  assertTurnoutHeaders(response);
  assert.equal(completion.object, 'chat.completion');
  assertModelEcho(completion.model);
  assert.ok(completion.id, 'completion id missing');
  assert.equal(completion.choices.length, 1);
  const choice = completion.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0, 'empty content');
  assert.ok(choice.finish_reason, 'finish_reason missing');
});

test(`[${KIND}] chat.completions.create, streaming`, async () => {
  const { data: stream, response } = await client.chat.completions
    .create({ model: MODEL, messages, stream: true, max_tokens: 64 })
    .withResponse();
  assert.equal(response.status, 200);
  assertTurnoutHeaders(response);
  assert.match(response.headers.get('content-type') || '', /^text\/event-stream/);

  let chunks = 0;
  let contentChunks = 0;
  let text = '';
  let finishReason = null;
  let role = null;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assertModelEcho(chunk.model);
    for (const choice of chunk.choices) {
      if (choice.delta?.role) role = choice.delta.role;
      if (typeof choice.delta?.content === 'string' && choice.delta.content.length > 0) {
        contentChunks += 1;
        text += choice.delta.content;
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  assert.ok(chunks > 1, `expected several chunks, got ${chunks}`);
  assert.ok(contentChunks > 1, `expected content in several chunks, got ${contentChunks}`);
  assert.equal(role, 'assistant');
  assert.ok(text.trim().length > 0, 'joined text is empty');
  assert.equal(finishReason, 'stop');

  // The stream should tell the same story as a non-streamed answer.
  const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 64 });
  assert.equal(text, whole.choices[0].message.content, 'streamed deltas do not join into the full answer');
});

test(`[${KIND}] tools, non-streaming tool_calls`, async () => {
  const completion = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools,
    tool_choice: 'auto',
  });
  assertModelEcho(completion.model);
  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  const calls = choice.message.tool_calls;
  assert.ok(Array.isArray(calls) && calls.length >= 1, 'no tool_calls');
  const call = calls[0];
  assert.equal(call.type, 'function');
  assert.ok(call.id, 'tool call id missing');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args, 'object');
  assert.notEqual(args, null);
});

test(`[${KIND}] tools, streamed argument fragments join to JSON`, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools,
    stream: true,
  });
  // Assemble the way OpenAI documents it: by tool call index.
  const calls = new Map();
  let fragments = 0;
  let finishReason = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      for (const tc of choice.delta?.tool_calls ?? []) {
        const entry = calls.get(tc.index) ?? { id: '', name: '', args: '' };
        if (tc.id) entry.id = tc.id;
        if (tc.function?.name) entry.name += tc.function.name;
        if (typeof tc.function?.arguments === 'string' && tc.function.arguments.length > 0) {
          entry.args += tc.function.arguments;
          fragments += 1;
        }
        calls.set(tc.index, entry);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  assert.ok(calls.size >= 1, 'no streamed tool calls');
  assert.ok(fragments > 1, `expected the arguments in several fragments, got ${fragments}`);
  assert.equal(finishReason, 'tool_calls');
  const first = calls.get(0) ?? [...calls.values()][0];
  assert.ok(first.id, 'streamed tool call id missing');
  assert.equal(first.name, 'get_weather');
  let args;
  assert.doesNotThrow(() => { args = JSON.parse(first.args); }, `fragments do not join to JSON: ${first.args}`);
  assert.equal(typeof args, 'object');
  assert.notEqual(args, null);
});

test(`[${KIND}] models.list() includes the route`, async () => {
  const ids = [];
  for await (const model of client.models.list()) {
    assert.equal(typeof model.id, 'string');
    ids.push(model.id);
  }
  assert.ok(ids.includes(MODEL), `models.list() = ${JSON.stringify(ids)} lacks ${MODEL}`);
});

test(`[${KIND}] unknown model is a NotFoundError (404)`, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model-e2e', messages }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    },
  );
});
