"""The gateway's pure pieces without processes: body checks, error shaping (on real LiteLLM
1.108.7 error texts), and the middleware's order of checks with a stand-in for LiteLLM's app."""

from __future__ import annotations

import asyncio
import json

import pytest
from litellm_orch import chat_request, upstream_errors
from litellm_orch.errors import GatewayError, scrub
from litellm_orch.middleware import GatewayMiddleware
from litellm_orch.settings import GatewaySettings

# Verbatim LiteLLM 1.108.7 messages seen through the gateway.
CONTEXT = ("litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError: OpenAIException "
           "- This model's maximum context length is 8192 tokens, but the messages use 9011 tokens.\nmodel=jerry-tiny. "
           "context_window_fallbacks=None. fallbacks=None.\n\nSet 'context_window_fallback' - "
           "https://docs.litellm.ai/docs/routing#fallbacks\n\nLiteLLM: model group 'jerry-tiny' failed with the error "
           "above. No fallback was attempted.")
CONNECTION = ("litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.\n\nLiteLLM: model "
              "group 'jerry-gone' failed with the error above. No fallback was attempted.")
BARE_500 = ("litellm.InternalServerError: InternalServerError: OpenAIException - Error code: 500\n\nLiteLLM: model group "
            "'jerry-tiny-re2' failed with the error above. No fallback was attempted.")
BACKEND_400 = ("litellm.BadRequestError: OpenAIException - {\"error\":{\"message\":\"'messages[2].role' must be one of "
               "system, user\",\"type\":\"invalid_request_error\",\"param\":\"messages[2].role\",\"code\":"
               "\"invalid_value\"}}\n\nLiteLLM: model group 'jerry-tiny' failed with the error above.")


def test_context_window_error_becomes_a_sentence() -> None:
    shaped = upstream_errors.shape(400, CONTEXT, upstream_errors.Context(model="jerry-tiny"))
    assert shaped.status == 400 and not shaped.retry
    err = shaped.body["error"]
    assert err["message"] == ("The prompt is longer than jerry-tiny's 8,192-token context (it needs 9,011 tokens). "
                              "Shorten the conversation or start a new one, or lower max_tokens.")
    assert err["code"] == "context_length_exceeded" and err["param"] == "messages"


def test_connection_error_is_a_retryable_503() -> None:
    shaped = upstream_errors.shape(500, CONNECTION, upstream_errors.Context(model="jerry-gone"))
    assert shaped.status == 503 and shaped.retry and shaped.body["error"]["code"] == "backend_unavailable"


def test_backend_500_without_detail_is_a_final_502() -> None:
    shaped = upstream_errors.shape(500, BARE_500, upstream_errors.Context(model="jerry-tiny-re2"))
    assert shaped.status == 502 and not shaped.retry
    assert shaped.body["error"]["message"].startswith("jerry-tiny-re2's backend failed: HTTP 500 with no detail.")


def test_backend_400_keeps_its_message_param_and_code() -> None:
    shaped = upstream_errors.shape(400, BACKEND_400, upstream_errors.Context(model="jerry-tiny"))
    assert shaped.status == 400
    assert shaped.body["error"] == {"message": "'messages[2].role' must be one of system, user.",
                                    "type": "invalid_request_error", "param": "messages[2].role",
                                    "code": "invalid_value"}


def test_mid_stream_connection_loss_says_the_answer_is_incomplete() -> None:
    shaped = upstream_errors.shape(500, "litellm.APIConnectionError: APIConnectionError: OpenAIException - peer closed",
                                   upstream_errors.Context(model="jerry-tiny", mid_stream=True))
    assert shaped.body["error"]["message"].startswith("The answer from jerry-tiny was cut off: the connection")


@pytest.mark.parametrize("text", ["/usr/lib/python3/site-packages/openvino/x.py:12 failed",
                                  "at /home/runner/work/openvino/src/core/shape.cpp:88",
                                  "see /opt/homelab-llm/models/a.gguf"])
def test_paths_never_reach_a_message(text: str) -> None:
    assert "/" not in scrub(text).replace("<path>", "")


@pytest.mark.parametrize("raw,needle", [
    (b"[]", "got an array"), (b"null", "got null"), (b'{"a": NaN}', "NaN"), (b"{", "not valid JSON"),
    (b"\xff", "not UTF-8"), (b'{"a":' + b"[" * 70 + b"]" * 70 + b"}", "nested more than 64"),
    (b"[" * 100_000, "nested more than 64"),
])
def test_parse_body_refuses(raw: bytes, needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        chat_request.parse_body(raw)
    assert info.value.status == 400 and needle in info.value.message


def test_check_chat_accepts_an_ordinary_request() -> None:
    body = {"model": "jerry-tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "auto", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 5,
            "temperature": 0, "stop": ["x"], "seed": None, "user": "u", "some_vendor_knob": [1]}
    chat_request.check_chat(body, {"jerry-tiny"})


class _Backend:
    """Stands in for LiteLLM's app: reads the body, then answers after `delay` (or never)."""

    def __init__(self, delay: float = 0.0, headers: list | None = None) -> None:
        self.delay, self.headers = delay, headers or []
        self.bodies: list[bytes] = []
        self.cancelled = False

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), *self.headers]})
        await send({"type": "http.response.body", "body": b"{}"})


SETTINGS = GatewaySettings(max_body_bytes=2048, models=frozenset({"jerry-tiny"}),
                           upstreams=frozenset({"10.0.0.5:4010"}), timeout_s=300)
CHAT = json.dumps({"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _call(app, path: str, chunks: list[bytes], headers: dict[str, str], disconnect_after: float | None = None):
    """Drive `app` like uvicorn: body chunks, then http.disconnect when the client leaves (or
    when the response completed). Returns (status, headers, body, how many chunks were read)."""
    sent: list[dict] = []
    read = 0

    async def run():
        nonlocal read
        done = asyncio.Event()
        queue = list(chunks)

        async def receive():
            nonlocal read
            if queue:
                read += 1
                chunk = queue.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(queue)}
            if disconnect_after is not None:
                await asyncio.sleep(disconnect_after)
            else:
                await done.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {"type": "http", "method": "POST", "path": path,
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(run())
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"] if start else None), dict(start["headers"]) if start else {}, body, read


@pytest.fixture(autouse=True)
def master(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-unit")


AUTH = {"Authorization": "Bearer sk-unit", "Content-Length": str(len(CHAT))}


def test_no_key_is_refused_without_reading_the_body() -> None:
    backend = _Backend()
    status, _, _, read = _call(GatewayMiddleware(backend, SETTINGS), "/v1/chat/completions", [CHAT], {})
    assert status == 401 and read == 0 and backend.bodies == []


def test_refusal_before_the_body_closes_only_when_the_body_is_unbounded() -> None:
    # A small declared body is left for the server to discard (the connection stays usable);
    # a large or undeclared (chunked) one is not worth reading: close.
    def close_header(headers: dict[str, str]) -> bytes | None:
        status, sent, _, read = _call(GatewayMiddleware(_Backend(), SETTINGS), "/v1/chat/completions", [CHAT],
                                      headers)
        assert status == 401 and read == 0
        return sent.get(b"connection")
    assert close_header({"Content-Length": str(len(CHAT))}) is None
    assert close_header({"Content-Length": "4096"}) == b"close"
    assert close_header({}) == b"close"


def test_declared_size_over_the_limit_is_refused_without_reading() -> None:
    status, headers, _, read = _call(GatewayMiddleware(_Backend(), SETTINGS), "/v1/chat/completions", [b"x"],
                                     {"Authorization": "Bearer sk-unit", "Content-Length": "4096"})
    assert status == 413 and read == 0 and headers[b"connection"] == b"close"


def test_chunked_body_stops_being_read_past_the_limit() -> None:
    chunks = [b" " * 1000] * 50
    status, _, _, read = _call(GatewayMiddleware(_Backend(), SETTINGS), "/v1/chat/completions", chunks,
                               {"Authorization": "Bearer sk-unit"})
    assert status == 413 and read == 3  # 3,000 bytes > 2,048: the other 47 chunks are never read


def test_client_that_leaves_cancels_the_request() -> None:
    backend = _Backend(delay=30)
    status, _, _, _ = _call(GatewayMiddleware(backend, SETTINGS), "/v1/chat/completions", [CHAT], AUTH,
                            disconnect_after=0.2)
    assert status is None and backend.cancelled and len(backend.bodies) == 1
    # LiteLLM gets the client's body plus the request id for the backend call (and nothing else).
    passed = json.loads(backend.bodies[0])
    assert passed.pop("extra_headers")["x-request-id"].startswith("req-")
    assert passed == json.loads(CHAT)


def test_backend_headers_are_hidden() -> None:
    backend = _Backend(headers=[(b"x-litellm-model-api-base", b"http://10.0.0.5:4010/v1"),
                                (b"llm_provider-server", b"uvicorn"), (b"x-debug", b"from 10.0.0.5:4010"),
                                (b"x-litellm-model-group", b"jerry-tiny")])
    status, headers, _, _ = _call(GatewayMiddleware(backend, SETTINGS), "/v1/chat/completions", [CHAT], AUTH)
    assert status == 200
    assert set(headers) == {b"content-type", b"x-litellm-model-group"}


def test_unserved_endpoint_is_a_404_and_never_reaches_litellm() -> None:
    backend = _Backend()
    status, _, body, _ = _call(GatewayMiddleware(backend, SETTINGS), "/v1/embeddings", [b"{}"], AUTH)
    assert status == 404 and json.loads(body)["error"]["code"] == "endpoint_not_served" and backend.bodies == []


def test_litellm_context_writes_are_skipped_only_during_a_collection() -> None:
    """gc_safety: LiteLLM's finalizer-time ContextVar.reset must not run inside a GC (a re-entrant
    write segfaulted workers in CPython 3.11's contextvars), and must still run outside one."""
    from contextvars import ContextVar

    from litellm import _internal_context

    from litellm_orch import gc_safety

    gc_safety.install()
    gc_safety.install()  # idempotent
    var: ContextVar[str] = ContextVar("probe", default="before")
    token = var.set("inside")
    gc_safety._track("start", {})
    try:
        _internal_context._restore(var, token)
        assert var.get() == "inside"  # skipped while collecting
    finally:
        gc_safety._track("stop", {})
    _internal_context._restore(var, token)
    assert var.get() == "before"  # runs as before outside a collection
