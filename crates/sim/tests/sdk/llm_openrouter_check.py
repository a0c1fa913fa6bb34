"""OpenRouter's official Python SDK (`openrouter`) against gekko's LLM simulator
(OpenRouter path, /api/v1).

Usage: llm_openrouter_check.py BASE_URL KEY

The SDK validates every answer against OpenRouter's own response models (pydantic,
generated from OpenRouter's OpenAPI document), so a field the simulator leaves out or
types wrongly fails here. Faults are queued through the simulator's admin API. Prints
"all checks passed" at the end; any failed check raises.
"""

import json
import sys
import urllib.request

from openrouter import OpenRouter, errors

base, key = sys.argv[1], sys.argv[2]
api = base + "/api/v1"


def inject(fault):
    req = urllib.request.Request(
        base + "/_sim/faults",
        data=json.dumps(fault).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 200, resp.status


client = OpenRouter(api_key=key, server_url=api, x_open_router_title="gekko sdk check")

# The models list, validated against OpenRouter's Model schema.
listed = client.models.list().result
by_id = {m.id: m for m in listed.data}
assert "meta-llama/llama-3.1-8b-instruct:free" in by_id, list(by_id)
mini = by_id["openai/gpt-4o-mini"]
assert mini.pricing.prompt == "0.00000015", mini.pricing
assert mini.pricing.completion == "0.0000006", mini.pricing
assert mini.context_length == 128000, mini
assert listed.total_count == len(listed.data), listed
print("models.list:", sorted(by_id))

# The current key, validated against the key-info schema.
info = client.api_keys.get_current_key_metadata().data
assert info.label.startswith("sk-") and "..." in info.label, info.label
assert key not in info.label, info.label
assert info.limit is None and info.limit_remaining is None, info
usage_before = info.usage

# A plain chat.
res = client.chat.send(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "what is the position"}],
)
assert res.id.startswith("gen-"), res
assert res.choices[0].message.content == "sim reply to: what is the position", res
assert res.choices[0].finish_reason == "stop", res
assert res.usage.prompt_tokens == 4 and res.usage.completion_tokens == 7, res.usage
print("chat:", res.choices[0].message.content)

# The generation is found by its id, validated against OpenRouter's generation schema.
gen = client.generations.get_generation(id=res.id).data
assert gen.id == res.id and gen.model == "openai/gpt-4o-mini", gen
assert gen.tokens_prompt == 4 and gen.tokens_completion == 7, gen
assert gen.streamed is False and gen.finish_reason == "stop", gen
assert abs(gen.total_cost - res.usage.cost) < 1e-12, (gen.total_cost, res.usage)
print("generation:", gen.id, gen.total_cost)

# The key's usage went up by the cost of that answer.
after = client.api_keys.get_current_key_metadata().data.usage
assert after > usage_before, (usage_before, after)

# A stream: chunks, a finish reason and the usage chunk.
chunks = list(
    client.chat.send(
        model="anthropic/claude-3.5-haiku",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "sim reply to: stream it", (text, chunks)
assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks), chunks
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7, chunks[-1]
print("stream:", text)

# A wrong key is the SDK's UnauthorizedResponseError.
bad = OpenRouter(api_key="sk-or-v1-not-a-key", server_url=api)
try:
    bad.chat.send(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("a wrong key must be refused")
except errors.UnauthorizedResponseError as e:
    assert e.data.error.code == 401, e.data
print("wrong key: UnauthorizedResponseError")

# 429 and 402 faults are the SDK's typed errors, with their headers and metadata.
inject({"kind": "status", "code": 429, "retry_after_s": 2})
try:
    client.chat.send(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("the 429 fault must raise")
except errors.TooManyRequestsResponseError as e:
    assert e.data.error.code == 429, e.data
    assert e.headers["retry-after"] == "2", e.headers
    assert e.headers["x-ratelimit-remaining"] == "0", e.headers
print("429: TooManyRequestsResponseError")
inject({"kind": "status", "code": 402})
try:
    client.chat.send(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("the 402 fault must raise")
except errors.PaymentRequiredResponseError as e:
    assert e.data.error.code == 402, e.data
    assert e.data.error.metadata["limit_source"] == "openrouter_credits", e.data
print("402: PaymentRequiredResponseError")

# An unknown model is a BadRequestResponseError.
try:
    client.chat.send(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must be refused")
except errors.BadRequestResponseError as e:
    assert "is not a valid model ID" in e.data.error.message, e.data
print("all checks passed")
