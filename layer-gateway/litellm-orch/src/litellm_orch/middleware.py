"""The gateway's ASGI front: everything LiteLLM should never see or never say.

In request order:
1. the key, from the headers alone (nothing of the body is read for a caller without it);
2. the route: an endpoint the mesh does not serve is a 404 naming it;
3. the body size, from Content-Length and while a chunked body streams in (413 past the limit,
   and the connection is closed so the rest is never read);
4. the chat body: JSON object, finite numbers, bounded depth, parameter types, known model (400/404);
5. a client that goes away before its answer cancels the request behind it, non-streamed too
   (LiteLLM would otherwise wait for the whole generation);
6. responses: no header names a backend address; LiteLLM's error text becomes a sentence with the
   right status (`upstream_errors`), and failures that would fail again carry `x-should-retry:
   false` so the official clients do not repeat them (an optimizer alias would run 3 times).
Pure ASGI (no BaseHTTPMiddleware): streaming passes through chunk by chunk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from meshkit import requestid

from . import chat_request, keys, routes, upstream_errors
from .errors import GatewayError, encode
from .metrics import METRICS_PATHS, MODEL_KEY, send_page
from .settings import GatewaySettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Response headers that describe the backend behind a model (address, server software, its own
# headers as LiteLLM relays them with an `llm_provider-` prefix).
_HIDDEN_HEADER_PREFIXES = (b"llm_provider-", b"x-litellm-model-api-base")
_MAX_ERROR_BODY = 256 * 1024  # an error body larger than this is passed through untouched


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _answer(send: Send, err: GatewayError) -> None:
    body = err.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    """The client disconnected while sending its body."""


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, settings: GatewaySettings,
                 metrics_page: Callable[[], bytes] | None = None) -> None:
        self.app = app
        self.settings = settings
        self._metrics_page = metrics_page  # GET /metrics (behind the key); None: LiteLLM's route
        self._hidden_values = tuple(s.encode() for s in settings.upstreams)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._http(scope, receive, send)
        except GatewayError as err:
            await _answer(send, err)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path in keys.OPEN_ROUTES:
            await self.app(scope, receive, self._response_filter(send, upstream_errors.Context()))
            return
        problem = keys.key_problem(_header(scope, b"authorization"))
        if problem:
            raise GatewayError(401, problem, "api_key", "invalid_api_key", self._unread_body_headers(scope))
        route = routes.lookup(path)
        if not route.served:
            raise GatewayError(404, routes.not_served_message(method, path), None, "endpoint_not_served",
                               self._unread_body_headers(scope))
        if not route.accepts(method):
            raise GatewayError(405, routes.wrong_method_message(method, path, route.allowed), None,
                               "method_not_allowed", {"allow": ", ".join(sorted(route.allowed)), **self._unread_body_headers(scope)})
        if path in METRICS_PATHS and self._metrics_page is not None:
            # Behind the key like every route but the probes: model names and traffic are not for
            # anyone on the LAN. Prometheus sends the master key (credentials file).
            await send_page(send, self._metrics_page())
            return
        if path not in routes.CHAT_PATHS:
            await self.app(scope, receive, self._response_filter(send, upstream_errors.Context()))
            return
        try:
            raw = await self._read_body(scope, receive)
        except _Gone:
            return
        body = chat_request.parse_body(raw)
        chat_request.check_chat(body, self.settings.models)
        scope[MODEL_KEY] = body["model"]  # a configured name now: a bounded metrics label
        raw = _with_request_id(body)
        tools = body.get("tools")
        ctx = upstream_errors.Context(model=body["model"], tools=len(tools) if isinstance(tools, list) else 0,
                                      timeout_s=self.settings.timeout_for(body["model"]))
        await self._run_until_client_leaves(scope, raw, receive, self._response_filter(send, ctx),
                                            cancel=body.get("stream") is not True)

    def _unread_body_headers(self, scope: Scope) -> dict[str, str]:
        """Headers for an answer given before the body was read.

        A body declared within the limit is left to the server, which discards it and keeps the
        connection. Closing instead races the client: its body, sent in a segment after the
        headers, reaches a closed socket, the kernel answers with a reset, and the client may see
        `ReadError` / "Server disconnected" instead of the answer (seen in the soak test, 1 run
        in 3). A body of unknown or excessive size is not worth reading: close, and accept that
        race for such requests."""
        declared = (_header(scope, b"content-length") or "").strip()
        if declared.isdigit() and int(declared) <= self.settings.max_body_bytes:
            return {}
        return {"connection": "close"}

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise GatewayError(400, "The Content-Length header is not a number.", None, "invalid_request",
                                   {"connection": "close"})
            if int(declared) > limit:
                raise self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(None)  # chunked, or more bytes than declared: stop reading here
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, declared: int | None) -> GatewayError:
        limit = self.settings.max_body_bytes
        size = f" ({declared:,} bytes)" if declared is not None else ""
        return GatewayError(413, f"The request body{size} is larger than this gateway's limit of {limit:,} bytes; send "
                                 f"a shorter conversation (the operator sets the limit with "
                                 f"LITELLM_ORCH_MAX_BODY_BYTES).", None, "request_too_large", {"connection": "close"})

    async def _run_until_client_leaves(self, scope: Scope, raw: bytes, receive: Receive, send: Send,
                                       cancel: bool) -> None:
        """Run LiteLLM with the body already read and tell it when the client leaves.

        Non-streamed (`cancel`): LiteLLM never looks, so its task is cancelled, which closes the
        connection to the backend. Streamed: LiteLLM watches for the disconnect itself and closes
        the upstream in its own cleanup; a cancel from outside could land in that cleanup and
        leave the upstream open (seen: 2 of 13 abandoned streams ran to max_tokens), so a stream is
        only told (receive() says http.disconnect, send() raises OSError)."""
        replay: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]
        gone = asyncio.Event()
        finished = False

        async def inner_receive() -> Message:
            if replay:
                return replay.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def inner_send(message: Message) -> None:
            nonlocal finished
            if gone.is_set():
                # What ASGI 2.4 servers should do and uvicorn's httptools protocol does not (it
                # drops the message silently): a stream that swallowed our cancel stops here
                # (Starlette turns the OSError into ClientDisconnect and closes the upstream).
                raise OSError("the client disconnected")
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, inner_receive, inner_send))

        async def watch() -> None:
            # After the body, the server's receive() returns only when the client disconnects or
            # the response is complete (uvicorn reports both as http.disconnect).
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            if cancel and not finished:
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await task
        except asyncio.CancelledError:
            if not gone.is_set() or finished:
                raise  # cancelled from outside (server shutdown), not by us
        finally:
            watcher.cancel()

    def _response_filter(self, send: Send, ctx: upstream_errors.Context) -> Send:
        """Hide backend headers; rewrite LiteLLM's error bodies (whole JSON or an SSE error event)."""
        held: dict[str, Any] = {}
        buffered: list[bytes] = []
        streaming = False

        async def filtered(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                message["headers"] = self._visible_headers(message.get("headers", []))
                status = message["status"]
                content_type = _content_type(message["headers"])
                streaming = content_type.startswith(b"text/event-stream")
                if status >= 400 and content_type.startswith(b"application/json"):
                    held["start"] = message  # wait for the body to rewrite it
                    return
                await send(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            if "start" in held:
                buffered.append(message.get("body", b""))
                if message.get("more_body", False) and sum(map(len, buffered)) <= _MAX_ERROR_BODY:
                    return
                start = held.pop("start")
                raw = b"".join(buffered)
                if not message.get("more_body", False):
                    start, raw = self._reshape(start, raw, ctx)
                await send(start)
                await send({"type": "http.response.body", "body": raw, "more_body": message.get("more_body", False)})
                return
            if streaming and message.get("body", b"").startswith(b"data: {\"error\""):
                message["body"] = self._reshape_event(message["body"], ctx)
            await send(message)

        return filtered

    def _visible_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in headers
                if not k.lower().startswith(_HIDDEN_HEADER_PREFIXES)
                and not any(h in v for h in self._hidden_values)]

    def _reshape(self, start: Message, raw: bytes, ctx: upstream_errors.Context) -> tuple[Message, bytes]:
        try:
            found = upstream_errors.error_message(json.loads(raw))
        except (ValueError, RecursionError):
            found = None
        if found is None:
            return start, raw
        shaped = upstream_errors.shape(start["status"], found[0], ctx)
        body = encode(shaped.body)
        headers = [(k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"x-should-retry")]
        headers.append((b"content-length", str(len(body)).encode()))
        if not shaped.retry:
            headers.append((b"x-should-retry", b"false"))
        if shaped.retry_after is not None:
            headers.append((b"retry-after", str(shaped.retry_after).encode()))
        return {**start, "status": shaped.status, "headers": headers}, body

    def _reshape_event(self, event: bytes, ctx: upstream_errors.Context) -> bytes:
        """An SSE `data: {"error": ...}` event sent after the stream started (e.g. backend died)."""
        try:
            payload = json.loads(event.split(b"data: ", 1)[1].split(b"\n\n", 1)[0])
        except (ValueError, IndexError, RecursionError):
            return event
        found = upstream_errors.error_message(payload)
        if found is None:
            return event
        message, code = found
        status = int(code) if code and code.isdigit() else 500
        mid = upstream_errors.Context(ctx.model, ctx.tools, ctx.timeout_s, mid_stream=True)
        shaped = upstream_errors.shape(status, message, mid)
        return b"data: " + encode(shaped.body) + b"\n\n"


def _with_request_id(body: dict[str, Any]) -> bytes:
    """The body LiteLLM gets: the request id as the one extra header of every backend call.

    LiteLLM sends a body's `extra_headers` with the upstream request (OpenAI's client parameter);
    a client's own `extra_headers` are replaced, so callers cannot set headers at the backends."""
    rid = requestid.current.get() or requestid.new_id()
    return json.dumps({**body, "extra_headers": {requestid.HEADER: rid}}).encode()


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.lower()
    return b""
