"""Failure handling: fallback to another logical name, fail fast without one, clean errors."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from meshkit.testing import ServerProcess


def test_dead_backend_with_no_fallback_fails_cleanly(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-gone", messages=[{"role": "user", "content": "x"}])
    elapsed = time.monotonic() - started
    print(f"dead backend, no fallback: {info.value.status_code} after {elapsed * 1000:.0f} ms")
    assert info.value.status_code >= 500
    text = info.value.response.text
    assert set(info.value.response.json()["error"]) >= {"message", "type", "param", "code"}
    assert "Traceback" not in text and 'File "' not in text
    # Fail fast is structural: no retries were attempted (stock would retry twice with backoff).
    assert info.value.response.headers.get("x-litellm-attempted-retries", "0") == "0"


def test_failing_backend_is_called_exactly_once(gateway: ServerProcess, failing: ServerProcess,
                                               keys: dict[str, str]) -> None:
    httpx.delete(f"{failing.base}/_calls")
    resp = httpx.post(f"{gateway.base}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {keys['master']}"},
                      json={"model": "jerry-broken", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code >= 500
    assert "Traceback" not in resp.text
    # num_retries: 0 -> one attempt, no retry storm against a sick backend.
    assert len(httpx.get(f"{failing.base}/_calls").json()) == 1


def test_killed_backend_falls_back_to_another_name(client: openai.OpenAI, flaky: ServerProcess, calls) -> None:
    first = client.chat.completions.create(
        model="jerry-flaky", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert first.choices[0].message.content.startswith("from flaky")
    flaky.stop()
    raw = client.chat.completions.with_raw_response.create(
        model="jerry-flaky", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    answer = raw.parse()
    assert raw.headers.get("x-litellm-attempted-fallbacks") == "1"
    assert not answer.choices[0].message.content.startswith("from flaky")
    # The fallback is the real ov-server behind jerry-tiny.
    assert [c["model"] for c in calls()] == ["jerry-tiny"]
    # Streaming requests fall back too.
    stream = client.chat.completions.create(
        model="jerry-flaky", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True)
    assert any(c.choices and c.choices[0].delta.content for c in stream)
