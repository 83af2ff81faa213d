"""The gateway through the official `openai` client, against the real ov-server."""

from __future__ import annotations

import openai
import pytest

PUBLIC_NAMES = {"jerry-tiny", "jerry-tiny-moa", "jerry-tiny-re2", "jerry-tiny-bon"}


def test_models_list_has_every_logical_name(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list().data}
    assert PUBLIC_NAMES <= ids


def test_chat_answers_with_usage(client: openai.OpenAI, calls) -> None:
    resp = client.chat.completions.create(
        model="jerry-tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    assert resp.choices[0].message.role == "assistant"
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    # The logical name reached the backend as its own model id, exactly once.
    assert [c["model"] for c in calls()] == ["jerry-tiny"]


def test_streaming_chunks_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="jerry-tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=8,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert content_chunks, "no content chunks streamed"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].completion_tokens > 0


def test_unknown_model_is_a_clean_4xx(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-nope", messages=[{"role": "user", "content": "x"}])
    assert 400 <= info.value.status_code < 500
    body = info.value.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert "Traceback" not in info.value.response.text


def test_unknown_params_are_dropped(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="jerry-tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4,
        extra_body={"some_vendor_knob": 1})
    assert resp.choices
