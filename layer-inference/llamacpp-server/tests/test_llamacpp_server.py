"""The real server process on a free port: health, models (upstream ids), chat, streaming, the
key check and OpenAI-shaped errors. Written by `homelab new`; extend it with your real work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from llamacpp_server.server import KEY_ENV, MODELS

KEY = "test-key-not-a-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body: dict | None = None, key: str | None = KEY) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, KEY_ENV: KEY} if KEY_ENV else dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "llamacpp_server", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(url, "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_health_and_models_list_upstream_ids(base: str) -> None:
    assert json.loads(call(base, "/health")[1]) == {"status": "ok", "service": "llamacpp-server"}
    status, body = call(base, "/v1/models")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == list(MODELS)


def test_chat_answers_and_streams(base: str) -> None:
    model = next(iter(MODELS))
    chat = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    status, body = call(base, "/v1/chat/completions", chat)
    assert status == 200
    assert "hello there" in json.loads(body)["choices"][0]["message"]["content"]
    status, body = call(base, "/v1/chat/completions", {**chat, "stream": True})
    events = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    assert status == 200 and events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert "hello there" in text


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    ({"model": next(iter(MODELS)), "messages": []}, 400, "messages"),
    ([1, 2], 400, None),
])
def test_bad_requests_get_openai_errors(base: str, body: object, status: int, param: str | None) -> None:
    got, raw = call(base, "/v1/chat/completions", body)  # type: ignore[arg-type]
    error = json.loads(raw)["error"]
    assert got == status and error["param"] == param and error["message"]


def test_key_is_checked(base: str) -> None:
    chat = {"model": next(iter(MODELS)), "messages": [{"role": "user", "content": "x"}]}
    if not KEY_ENV:  # no gateway key (homelab new --gateway-auth adds one): open to loopback callers
        assert call(base, "/v1/chat/completions", chat, key=None)[0] == 200
        return
    assert call(base, "/v1/chat/completions", chat, key=None)[0] == 401
    assert call(base, "/v1/chat/completions", chat, key="wrong")[0] == 401
