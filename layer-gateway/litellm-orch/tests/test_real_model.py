"""jerry-chat, the mesh's real model (SmolLM2-135M-Instruct, built into ov-server), through the
gateway with the official `openai` client: real LiteLLM, real ov-server (the session's, which serves
its default models). Expected texts come from the model's own greedy answers in the same run,
except that it must know the capital of France.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import openai
import procs
import pytest

from meshkit.testing import ServerProcess

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a short story about a cat."}]


def ask(client: openai.OpenAI, messages=QUESTION, **kw):  # noqa: ANN001, ANN201
    return client.chat.completions.create(model="jerry-chat", messages=messages, **kw)


def test_jerry_chat_is_listed_and_falls_back_only_to_the_same_model(client: openai.OpenAI) -> None:
    assert {"jerry-chat", "jerry-tiny"} <= {m.id for m in client.models.list().data}
    # A gibberish answer from jerry-tiny is no substitute for a real one, nor the other way round;
    # jerry-chat's only fallback is the same model on the other engine (llamacpp-server, opt-in).
    fallbacks = procs.rendered_config()["router_settings"].get("fallbacks") or []
    rules = {src: dsts for rule in fallbacks for src, dsts in rule.items()}
    assert rules.get("jerry-chat") == ["jerry-chat-lcpp"] and rules.get("jerry-chat-lcpp") == ["jerry-chat"]
    involved = {name for src, dsts in rules.items() for name in (src, *dsts)}
    assert "jerry-tiny" not in involved, fallbacks


def test_paris_and_greedy_is_deterministic(client: openai.OpenAI, calls) -> None:
    texts = [ask(client, temperature=0, max_tokens=32).choices[0].message.content for _ in range(2)]
    assert "Paris" in texts[0] and texts[0] == texts[1]
    # n=2 is a batch of 2, which OpenVINO computes with other kernels than a batch of 1 on some
    # CPUs (AVX-512: a shorter answer), so only the choices of one batch must match each other.
    both = [c.message.content for c in ask(client, temperature=0, max_tokens=32, n=2).choices]
    assert both[0] == both[1] and "Paris" in both[0], both
    assert {c["model"] for c in calls()} == {"jerry-chat"}  # the logical name reached ov-server as is


def test_max_tokens_and_stop_strings(client: openai.OpenAI) -> None:
    full = ask(client, STORY, temperature=0, max_tokens=40)
    text = full.choices[0].message.content
    cut = ask(client, STORY, temperature=0, max_tokens=5)
    assert cut.usage.completion_tokens == 5 and cut.choices[0].finish_reason == "length"
    assert text.startswith(cut.choices[0].message.content)
    words = text.split()
    assert len(words) >= 6, text
    word = words[len(words) // 2]
    stop = word[1:] if len(word) > 2 else word  # mid-word: matched on text, not on tokens
    r = ask(client, STORY, temperature=0, max_tokens=40, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == text[: text.index(stop)]


def test_seed_and_n(client: openai.OpenAI) -> None:
    kw = {"temperature": 1.0, "max_tokens": 24, "messages": STORY}
    a, b = (ask(client, seed=7, **kw).choices[0].message.content for _ in range(2))
    assert a == b
    assert len({ask(client, seed=s, **kw).choices[0].message.content for s in (1, 2)} | {a}) > 1
    r = ask(client, n=3, seed=5, **kw)
    assert [c.index for c in r.choices] == [0, 1, 2] and len({c.message.content for c in r.choices}) > 1


def test_streamed_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = ask(client, temperature=0, max_tokens=32)
    chunks = list(ask(client, temperature=0, max_tokens=32, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and chunks[-1].usage is not None
    assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (plain.usage.prompt_tokens,
                                                                    plain.usage.completion_tokens)


def _chat_pid(ov_server: ServerProcess) -> int | None:
    m = httpx.get(f"{ov_server.base}/health", timeout=10).json()["models"]["jerry-chat"]
    return m.get("pid") if m["state"] == "ok" else None


def test_engine_killed_is_a_named_error_no_fallback_and_tiny_keeps_answering(
        gateway: ServerProcess, keys: dict[str, str], client: openai.OpenAI, ov_server: ServerProcess) -> None:
    """Last in this file: jerry-chat's engine is killed at ov-server; through the gateway its
    client gets the cause (not an answer from another model), jerry-tiny answers meanwhile, and
    jerry-chat answers again within the bound below."""
    pid = _chat_pid(ov_server)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    r = httpx.post(f"{gateway.base}/v1/chat/completions", timeout=60,
                   headers={"Authorization": f"Bearer {keys['master']}"},
                   json={"model": "jerry-chat", "messages": QUESTION, "max_tokens": 8})
    assert r.status_code >= 500, r.text
    assert "engine for jerry-chat died: SIGKILL (signal 9)" in r.json()["error"]["message"]
    assert r.headers.get("x-litellm-attempted-fallbacks") in (None, "0")
    tiny = client.chat.completions.create(model="jerry-tiny", messages=QUESTION, max_tokens=4)
    assert tiny.usage.completion_tokens > 0
    t0 = time.monotonic()
    deadline = t0 + 90  # backoff 0.5 s + a load from the conversion cache + the gateway's 5 s cooldown
    while True:
        try:
            if "Paris" in ask(client, temperature=0, max_tokens=16).choices[0].message.content:
                break
        except openai.APIStatusError:
            pass
        assert time.monotonic() < deadline, "jerry-chat did not come back"
        time.sleep(0.5)
    assert _chat_pid(ov_server) not in (None, pid)
    print(f"jerry-chat answered through the gateway again {time.monotonic() - t0:.1f} s after its engine died")


@pytest.fixture(autouse=True, scope="module")
def _chat_serving(ov_server: ServerProcess) -> None:
    """ov-server answers /health 200 once every model had its first load; jerry-chat must be up."""
    assert _chat_pid(ov_server) is not None, httpx.get(f"{ov_server.base}/health", timeout=10).text
