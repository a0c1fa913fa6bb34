"""The official `openai` Python SDK against gekko's LLM simulator (OpenAI path, /v1).

Usage: llm_openai_check.py BASE_URL KEY

BASE_URL is the simulator's root (http://127.0.0.1:P); the SDK is pointed at BASE_URL/v1,
the way LiteLLM and any OpenAI client would be. Faults are queued through the simulator's
admin API (POST /_sim/faults). Prints "all checks passed" at the end; any failed check
raises, so the process exits non-zero with a traceback.
"""

import json
import sys
import urllib.request

import openai
from openai import OpenAI

base, key = sys.argv[1], sys.argv[2]


def inject(fault):
    req = urllib.request.Request(
        base + "/_sim/faults",
        data=json.dumps(fault).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    # The admin API is on loopback: no proxy may stand in between.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 200, resp.status


client = OpenAI(api_key=key, base_url=base + "/v1", max_retries=0, timeout=20)

# models.list(): the OpenAI list format.
models = client.models.list()
ids = [m.id for m in models.data]
assert "openai/gpt-4o-mini" in ids, ids
assert all(m.object == "model" for m in models.data), models
assert models.data[0].owned_by == "openai", models.data[0]
print("models.list:", ids)

# A plain chat completion.
resp = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "what is the EUR-USD spread"},
    ],
)
assert resp.object == "chat.completion", resp
assert resp.id.startswith("gen-"), resp.id
choice = resp.choices[0]
assert choice.message.role == "assistant", choice
assert choice.message.content == "sim reply to: what is the EUR-USD spread", choice
assert choice.finish_reason == "stop", choice
assert resp.usage.prompt_tokens == 7, resp.usage
assert resp.usage.completion_tokens == 8, resp.usage
assert resp.usage.total_tokens == 15, resp.usage
print("chat:", choice.message.content, resp.usage.total_tokens, "tokens")

# max_tokens truncates with finish_reason "length".
short = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "one two three"}],
    max_tokens=2,
)
assert short.choices[0].message.content == "sim reply", short
assert short.choices[0].finish_reason == "length", short

# A stream with include_usage: content deltas, a finish reason, then a usage chunk with
# no choices; the SDK skips the ": OPENROUTER PROCESSING" comments and stops at [DONE].
stream = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "stream the answer please"}],
    stream=True,
    stream_options={"include_usage": True},
)
chunks = list(stream)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "sim reply to: stream the answer please", (text, chunks)
assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finishes == ["stop"], chunks
last = chunks[-1]
assert last.choices == [], last
assert last.usage is not None and last.usage.completion_tokens == 7, last
assert last.usage.prompt_tokens == 4 and last.usage.total_tokens == 11, last.usage
print("stream:", text, "usage", last.usage.total_tokens)

# The context-manager form (with_streaming_response) also reads the stream to its end.
with client.chat.completions.with_streaming_response.create(
    model="anthropic/claude-3.5-haiku",
    messages=[{"role": "user", "content": "hi"}],
    stream=True,
) as raw:
    assert raw.headers["content-type"].startswith("text/event-stream"), raw.headers
    assert raw.headers["x-generation-id"].startswith("gen-"), raw.headers
    body = "".join(raw.iter_text())
    assert body.startswith(": OPENROUTER PROCESSING"), body
    assert body.rstrip().endswith("data: [DONE]"), body

# A mid-stream error event raises APIError from the iterator, after the first chunks.
inject({"kind": "mid_stream_error", "code": 502, "after_chunks": 1})
got = []
try:
    for c in client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "a b c d e"}],
        stream=True,
    ):
        got.append(c)
    raise AssertionError("a mid-stream error must raise")
except openai.APIError as e:
    assert len(got) == 1, got
    assert "unavailable" in str(e) or "502" in str(e), e
    print("mid-stream error:", type(e).__name__, e)

# A wrong key raises AuthenticationError.
bad = OpenAI(api_key="sk-or-v1-not-a-key", base_url=base + "/v1", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("a wrong key must be refused")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e
try:
    bad.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("a wrong key must be refused")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e
print("wrong key: AuthenticationError")

# A 429 fault raises RateLimitError, with Retry-After visible on the response.
inject({"kind": "status", "code": 429, "retry_after_s": 4})
try:
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("the 429 fault must raise")
except openai.RateLimitError as e:
    assert e.status_code == 429, e
    assert e.response.headers["retry-after"] == "4", e.response.headers
    assert e.body["code"] == 429, e.body
print("429: RateLimitError")

# 402 and 503 map to the SDK's status errors too.
inject({"kind": "status", "code": 402})
try:
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("the 402 fault must raise")
except openai.APIStatusError as e:
    assert e.status_code == 402, e
    assert e.body["metadata"]["limit_source"] == "openrouter_credits", e.body
inject({"kind": "status", "code": 503})
try:
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("the 503 fault must raise")
except openai.InternalServerError as e:
    assert e.status_code == 503, e

# An unknown model and a malformed request are BadRequestError.
try:
    client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must be refused")
except openai.BadRequestError as e:
    assert "is not a valid model ID" in str(e), e
try:
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[])
    raise AssertionError("empty messages must be refused")
except openai.BadRequestError as e:
    assert "messages" in str(e), e

# After every fault, the simulator still answers.
ok = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "still there"}])
assert ok.choices[0].message.content == "sim reply to: still there", ok
print("all checks passed")
