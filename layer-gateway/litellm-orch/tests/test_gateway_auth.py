"""Auth: master key only, 401 for a missing or wrong key, open probes, keyed deep health."""

from __future__ import annotations

import httpx
import openai
import pytest

from meshkit.testing import ServerProcess


@pytest.mark.parametrize("key", ["sk-wrong-key", "not-even-sk", "x"])
def test_wrong_key_is_401(gateway: ServerProcess, key: str) -> None:
    bad = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401
    err = info.value.response.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}


@pytest.mark.parametrize("path,method", [("/v1/models", "GET"), ("/v1/chat/completions", "POST"),
                                         ("/health", "GET"), ("/config/yaml", "GET")])
def test_missing_key_is_401(gateway: ServerProcess, path: str, method: str) -> None:
    resp = httpx.request(method, f"{gateway.base}{path}", json={"model": "jerry-tiny", "messages": []}
                         if method == "POST" else None)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["type"] == "auth_error"


def test_wrong_key_on_chat_never_reaches_backend(gateway: ServerProcess, calls) -> None:
    resp = httpx.post(f"{gateway.base}/v1/chat/completions", headers={"Authorization": "Bearer sk-nope"},
                      json={"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 401
    assert calls() == []


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness", "/health/readiness"])
def test_probes_are_open(gateway: ServerProcess, path: str) -> None:
    assert httpx.get(f"{gateway.base}{path}").status_code == 200


def test_deep_health_needs_key_and_has_no_stack_trace(gateway: ServerProcess, keys: dict[str, str]) -> None:
    resp = httpx.get(f"{gateway.base}/health", headers={"Authorization": f"Bearer {keys['master']}"},
                     timeout=120)
    assert resp.status_code == 200
    body = resp.json()
    healthy = {e["model"] for e in body["healthy_endpoints"]}
    assert "openai/jerry-tiny" in healthy
    # jerry-gone has nothing listening: it must be reported, without exception text.
    assert "openai/jerry-gone" in {e["model"] for e in body["unhealthy_endpoints"]}
    for marker in ("Traceback", 'File "', "stack", "litellm.", "Exception"):
        assert marker not in resp.text, f"deep /health leaks {marker!r}"
    # Secrets the gateway holds never appear.
    assert keys["ov"] not in resp.text and keys["optillm"] not in resp.text
