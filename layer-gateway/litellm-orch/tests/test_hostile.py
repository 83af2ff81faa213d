"""Hostile clients against the real gateway (issue 10): each case gets its status and OpenAI error
shape, and afterwards the gateway still answers a normal request with the same worker processes
and nothing is left running at the backend (`still_serving`)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import procs
import pytest

from meshkit.testing import ServerProcess

pytestmark = pytest.mark.usefixtures("still_serving")

LIMIT = 4 * 1024 * 1024  # the contract's default LITELLM_ORCH_MAX_BODY_BYTES (the fixture sets none)
CHAT = {"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def _error(resp: httpx.Response) -> dict:
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert "Traceback" not in err["message"] and "litellm." not in err["message"]
    return err


def _post(gateway: ServerProcess, keys: dict[str, str], content: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.base}/v1/chat/completions", content=content, timeout=60,
                      headers={"Authorization": f"Bearer {keys['master']}", "content-type": "application/json",
                               **headers})


@pytest.mark.parametrize("body,needle", [
    ("[1, 2]", "must be a JSON object, got an array"),
    ('"hello"', "must be a JSON object, got a string"),
    ('{"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "NaN"),
    ('{"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}', "Infinity"),
    ('{"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], "seed": -Infinity}', "-Infinity"),
    ('{"model": "jerry-tiny", "messages": [', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
], ids=["array", "string", "nan", "infinity", "minus-infinity", "truncated", "not-utf8"])
def test_body_that_is_not_a_json_object_is_a_400(gateway: ServerProcess, keys: dict[str, str], body, needle: str,
                                                 calls) -> None:
    resp = _post(gateway, keys, body)
    assert resp.status_code == 400, resp.text
    err = _error(resp)
    assert needle in err["message"] and err["code"] == "invalid_json"
    assert calls() == []  # nothing reached the backend


@pytest.mark.parametrize("depth", [65, 20_000])
def test_deeply_nested_json_is_a_400(gateway: ServerProcess, keys: dict[str, str], depth: int) -> None:
    nested = "[" * depth + "]" * depth
    resp = _post(gateway, keys, '{"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], '
                                f'"metadata": {{"x": {nested}}}}}')
    assert resp.status_code == 400, resp.text
    assert "nested more than 64 levels" in _error(resp)["message"]


def test_nesting_a_real_request_needs_is_accepted(gateway: ServerProcess, keys: dict[str, str]) -> None:
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"type": "function", "function": {"name": "deep", "description": "d", "parameters": schema}}
    resp = _post(gateway, keys, json.dumps({**CHAT, "tools": [tool], "tool_choice": "none"}))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("param,value,needle", [
    ("tools", "x", "'tools' must be an array of tool objects, got a string"),
    ("tools", [{"type": "function", "function": {"name": 3}}], "'tools[0].function.name' must be a string"),
    ("messages", "hi", "'messages' must be an array"),
    ("max_tokens", "ten", "'max_tokens' must be an integer, got a string"),
    ("stream", "yes", "'stream' must be a boolean"),
    ("temperature", True, "'temperature' must be a number, got a boolean"),
    ("stop", [1], "'stop' must be a string or an array of strings"),
])
def test_parameter_of_the_wrong_type_is_a_400_naming_it(client: openai.OpenAI, param: str, value, needle: str,
                                                        calls) -> None:
    body = {"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, param: value}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**body)
    err = _error(info.value.response)
    assert needle in err["message"]
    assert err["param"] == needle.split("'")[1]
    assert calls() == []


def test_unknown_model_is_a_404_listing_the_served_ones(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="jerry-nope", messages=[{"role": "user", "content": "x"}])
    err = _error(info.value.response)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "jerry-nope" in err["message"] and "jerry-tiny" in err["message"]


@pytest.mark.parametrize("call", ["embeddings", "responses", "completions", "images", "moderations"])
def test_endpoint_the_mesh_does_not_serve_is_a_404_saying_so(client: openai.OpenAI, call: str, calls) -> None:
    make = {
        "embeddings": lambda: client.embeddings.create(model="jerry-tiny", input="hi"),
        "responses": lambda: client.responses.create(model="jerry-tiny", input="hi"),
        "completions": lambda: client.completions.create(model="jerry-tiny", prompt="hi"),
        "images": lambda: client.images.generate(model="jerry-tiny", prompt="a cat"),
        "moderations": lambda: client.moderations.create(model="jerry-tiny", input="hi"),
    }[call]
    with pytest.raises(openai.NotFoundError) as info:
        make()
    err = _error(info.value.response)
    assert "is not served by this mesh" in err["message"] and err["code"] == "endpoint_not_served"
    assert "model group" not in err["message"]
    assert calls() == []


def test_wrong_method_on_a_served_path_is_a_405(gateway: ServerProcess, keys: dict[str, str]) -> None:
    resp = httpx.get(f"{gateway.base}/v1/chat/completions", headers={"Authorization": f"Bearer {keys['master']}"})
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    assert "use POST" in _error(resp)["message"]


def _raw_request(gateway: ServerProcess, head: str, body_bytes: int, chunk: int = 1 << 20) -> tuple[bytes, int, float]:
    """Send `head` and then up to `body_bytes` of body, stopping when the server answers or closes.
    Returns (the response head, bytes of body sent, seconds until the answer arrived)."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        payload = b"x" * chunk
        answer = b""
        while sent < body_bytes:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                sent += sock.send(payload[: min(chunk, body_bytes - sent)])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        sock.setblocking(True)
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    return answer, sent, time.monotonic() - started


def test_body_declared_over_the_limit_is_refused_before_it_is_sent(gateway: ServerProcess, keys: dict[str, str],
                                                                    calls) -> None:
    size = 200 * 1024 * 1024
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys['master']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n")
    answer, sent, _ = _raw_request(gateway, head, size)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < size // 2, f"the gateway let the client send {sent:,} of {size:,} bytes before answering"
    assert calls() == []


def test_chunked_body_over_the_limit_is_a_413(gateway: ServerProcess, keys: dict[str, str]) -> None:
    def body():
        for _ in range(LIMIT // 65536 + 64):
            yield b" " * 65536
    resp = httpx.post(f"{gateway.base}/v1/chat/completions", content=body(), timeout=60,
                      headers={"Authorization": f"Bearer {keys['master']}"})
    assert resp.status_code == 413
    err = _error(resp)
    assert err["code"] == "request_too_large" and f"{LIMIT:,} bytes" in err["message"]


def test_body_over_the_limit_through_the_official_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": "x" * (LIMIT + 1)}])
    assert info.value.status_code == 413
    assert "larger than this gateway's limit" in _error(info.value.response)["message"]


def test_large_body_under_the_limit_is_read_whole(gateway: ServerProcess, keys: dict[str, str]) -> None:
    # 1 MB arrives in many chunks; it passes the size check and the prompt is then too long for
    # the model: the backend's own 400, so the whole body reached it.
    filler = "hello " * (1024 * 1024 // 6)
    resp = _post(gateway, keys, json.dumps({**CHAT, "messages": [{"role": "user", "content": filler}]}))
    assert resp.status_code == 400 and _error(resp)["code"] == "context_length_exceeded"


def test_no_key_is_refused_before_the_body_is_read(gateway: ServerProcess, calls) -> None:
    size = 200 * 1024 * 1024
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    answer, sent, _ = _raw_request(gateway, head, size)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert sent < size // 2
    assert calls() == []


def test_flood_of_large_unauthenticated_bodies_keeps_memory_bounded(gateway: ServerProcess) -> None:
    master, workers = procs.gateway_tree(gateway)
    before = sum(procs.rss_kib(p) for p in [master, *workers])
    size = 200 * 1024 * 1024
    for _ in range(6):  # the attack: six 200 MB bodies without a key (1.3 GB per worker)
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
        answer, _, _ = _raw_request(gateway, head, size)
        assert answer.startswith(b"HTTP/1.1 401")
    after = sum(procs.rss_kib(p) for p in [master, *workers])
    print(f"\ngateway RSS (all processes) {before / 1024:.0f} -> {after / 1024:.0f} MiB")
    assert after - before < 64 * 1024, f"RSS grew by {(after - before) / 1024:.0f} MiB"


def _backend_addresses(*backends: ServerProcess) -> list[str]:
    return [f"127.0.0.1:{b.port}" for b in backends]


@pytest.mark.parametrize("kind", ["chat", "stream", "error", "models", "alias"])
def test_no_response_header_names_a_backend(gateway: ServerProcess, keys: dict[str, str], counter: ServerProcess,
                                            mesh: dict[str, ServerProcess], ov_server: ServerProcess, kind: str) -> None:
    auth = {"Authorization": f"Bearer {keys['master']}"}
    url = f"{gateway.base}/v1/chat/completions"
    if kind == "models":
        resp = httpx.get(f"{gateway.base}/v1/models", headers=auth)
    elif kind == "stream":
        with httpx.stream("POST", url, json={**CHAT, "stream": True}, headers=auth, timeout=60) as resp:
            resp.read()
    elif kind == "error":
        resp = httpx.post(url, json={**CHAT, "model": "jerry-broken"}, headers=auth, timeout=60)
    elif kind == "alias":
        resp = httpx.post(url, json={**CHAT, "model": "jerry-tiny-re2", "max_tokens": 1024}, headers=auth,
                          timeout=120)
    else:
        resp = httpx.post(url, json=CHAT, headers=auth, timeout=60)
    assert resp.status_code < 600
    names = {k.lower() for k in resp.headers}
    assert "x-litellm-model-api-base" not in names
    assert not [n for n in names if n.startswith("llm_provider-")]
    addresses = _backend_addresses(counter, mesh["optillm"], ov_server)
    leaks = [(k, v) for k, v in resp.headers.items() for a in addresses if a in v]
    assert leaks == []
