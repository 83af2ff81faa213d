"""What a user reads when something fails (issue 14): a short sentence saying what happened and
what to do, in OpenAI's error shape with the right status; never LiteLLM's class names, docs
links, routing dumps or stack text. Failures that would fail the same way again carry
`x-should-retry: false`, so the official clients do not repeat them."""

from __future__ import annotations

import httpx
import openai
import pytest

from meshkit.testing import ServerProcess

LITELLM_NOISE = ("litellm", "Exception", "Error:", "https://", "Traceback", "model group", "fallbacks=",
                 "Received Model Group", "OpenAIException", "File \"")


def _clean(err: openai.APIStatusError) -> dict:
    body = err.response.json()["error"]
    assert set(body) >= {"message", "type", "param", "code"}
    for noise in LITELLM_NOISE:
        assert noise not in body["message"], f"{noise!r} in {body['message']!r}"
    assert len(body["message"]) < 400, body["message"]
    return body


def _long_prompt() -> str:
    return "hello " * 9000  # more than jerry-tiny's 8,192-token context


def test_prompt_over_the_context(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": _long_prompt()}])
    body = _clean(info.value)
    assert body["code"] == "context_length_exceeded" and body["param"] == "messages"
    assert body["message"].startswith("The prompt is longer than jerry-tiny's 8,192-token context")
    assert "Shorten the conversation" in body["message"]


def test_prompt_over_the_context_with_tools_says_the_tools_count(client: openai.OpenAI) -> None:
    # What Open WebUI sends: many tool definitions on every request, streamed.
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "d " * 300,
                                               "parameters": {"type": "object", "properties": {}}}}
             for i in range(36)]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": "hello"}],
                                       tools=tools, stream=True)
    body = _clean(info.value)
    assert body["code"] == "context_length_exceeded"
    assert "including the 36 tool definitions" in body["message"] and "fewer or shorter tool" in body["message"]


def test_backend_down_without_fallback(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-gone", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    body = _clean(info.value)
    assert body["code"] == "backend_unavailable"
    assert body["message"].startswith("jerry-gone is not available: its backend does not answer.")


def test_backend_timeout(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-slow", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 504
    body = _clean(info.value)
    assert body["code"] == "upstream_timeout" and body["message"].startswith("jerry-slow did not answer within 2 s.")
    assert info.value.response.headers.get("x-should-retry") == "false"


def test_backend_refuses_the_gateways_key(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-wrongkey", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    body = _clean(info.value)
    assert body["code"] == "backend_auth_failed" and "same key" in body["message"]


def test_backend_error_is_not_retried_by_the_official_client(gateway: ServerProcess, failing: ServerProcess,
                                                             keys: dict[str, str]) -> None:
    # Default retries (2): the SDK repeats 5xx unless told not to.
    retrying = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], timeout=60)
    httpx.delete(f"{failing.base}/_calls")
    with pytest.raises(openai.APIStatusError) as info:
        retrying.chat.completions.create(model="jerry-broken", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    body = _clean(info.value)
    assert body["code"] == "backend_error" and "jerry-broken's backend failed: injected failure." in body["message"]
    assert len(httpx.get(f"{failing.base}/_calls").json()) == 1


def test_backend_dying_mid_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="jerry-breaking", messages=[{"role": "user", "content": "x"}],
                                            stream=True)
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    message = str(info.value.message)
    for noise in LITELLM_NOISE:
        assert noise not in message, message
    assert message.startswith("The answer from jerry-breaking was cut off")


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_auth_errors(gateway: ServerProcess, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = httpx.post(f"{gateway.base}/v1/chat/completions", json={"model": "jerry-tiny"}, headers=headers)
    assert resp.status_code == 401
    message = resp.json()["error"]["message"]
    assert ("Missing API key" if key is None else "Invalid API key") in message
    assert "Authorization: Bearer" in message
