"""One recording OpenAI-compatible test double (standard library only).

Stands in for a backend or a gateway where the real one is NOT what a test is about: it answers
`POST /v1/chat/completions` (whole or streamed, `n` choices, tool calls), `GET /v1/models` and
`GET /health`, and records every chat request. What it answers comes from a script: a function
of the recorded call returning a `Reply` (text, tool calls, a finish reason, or an HTTP error).

In the test process:

    with OpenAIDouble(script=lambda call: Reply("4"), api_key="k") as double:
        ... point the code under test at double.base_url (…/v1) ...
        assert [c.model for c in double.calls] == ["jerry-tiny"]

As a process of its own (when the test kills it, or a server under test runs elsewhere):

    python -m meshkit.testing.openai_double --port 0 [--api-key K] [--reply TEXT] [--model-id ID]
        [--fail-status N] [--delay S] [--break-stream] [--upstream URL]

prints `READY <port>` once listening. Over HTTP, `GET /_calls` lists the recorded calls as JSON
objects (model, n, stream, authorization, request_id (x-request-id), body; `usage` of a forwarded whole answer) and
`DELETE /_calls` clears them. `--upstream` forwards every chat request unchanged to a real /v1
base (streams chunk by chunk) and only records: a counting proxy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One answer. `tool_calls` are (name, arguments) pairs; `status` other than 200 answers an
    OpenAI-shaped error carrying `error` as its message."""

    content: str | None = "hello from the double"
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish_reason: str | None = None  # default: "tool_calls" when there are tool calls, else "stop"
    status: int = 200
    error: str = "injected failure"
    usage: dict[str, int] = field(default_factory=lambda: {
        "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})


@dataclass
class Call:
    """One recorded chat request."""

    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    usage: dict[str, Any] | None = None  # set in upstream mode from a whole answer

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def n(self) -> int:
        return int(self.body.get("n") or 1)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def as_json(self) -> dict[str, Any]:
        out = {"model": self.model, "n": self.n, "stream": self.stream,
               "authorization": self.headers.get("authorization"),
               "request_id": self.headers.get("x-request-id"), "body": self.body}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


# A script answers a call with one Reply (the same for every choice) or one Reply per choice.
Script = Callable[[Call], "Reply | list[Reply]"]


def fixed(text: str) -> Script:
    """The default script: `text #<call number>` for every call (numbers tell answers apart)."""
    counter = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def script(_call: Call) -> Reply:
        with lock:
            return Reply(f"{text} #{next(counter)}")
    return script


def _error(status: int, message: str, code: str) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}
            for name, args in reply.tool_calls]


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def completion(model: str | None, replies: list[Reply]) -> dict[str, Any]:
    """A whole chat.completion with one choice per reply."""
    choices = []
    for index, reply in enumerate(replies):
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = _tool_calls(reply)
        choices.append({"index": index, "message": message, "finish_reason": _finish(reply)})
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "choices": choices,
            "usage": replies[0].usage}


def chunks(model: str | None, replies: list[Reply], include_usage: bool) -> Iterator[dict[str, Any]]:
    """The chat.completion.chunk objects of a streamed answer: the text in several deltas and
    each tool call's arguments in two halves (clients must stitch both)."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}

    for index, reply in enumerate(replies):
        text = reply.content or ""
        yield chunk(index, {"role": "assistant", "content": ""})
        half = len(text) // 2
        for piece in (text[:half], text[half:]):
            if piece:
                yield chunk(index, {"content": piece})
        for number, call in enumerate(_tool_calls(reply)):
            args = call["function"]["arguments"]
            cut = len(args) // 2
            yield chunk(index, {"tool_calls": [{"index": number, "id": call["id"], "type": "function",
                                                "function": {"name": call["function"]["name"],
                                                             "arguments": args[:cut]}}]})
            yield chunk(index, {"tool_calls": [{"index": number, "function": {"arguments": args[cut:]}}]})
        yield chunk(index, {}, _finish(reply))
    if include_usage:
        yield {**base, "choices": [], "usage": replies[0].usage}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with a real server
    double: OpenAIDouble  # set on the per-double subclass

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        key = self.double.api_key
        if not key or self.headers.get("authorization") == f"Bearer {key}":
            return True
        self._send(401, _error(401, "bad key", "invalid_api_key"))
        return False

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/health":
            return self._send(200, {"status": "ok"})
        if path == "/_calls":
            return self._send(200, [c.as_json() for c in self.double.calls])
        if path == "/v1/models":
            if self._authorized():
                self._send(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "double"}
                    for m in self.double.models]})
            return None
        self._send(404, _error(404, f"no route {path}", "not_found"))

    def do_DELETE(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/_calls":
            return self._send(404, _error(404, "not found", "not_found"))
        self.double.clear()
        self._send(200, [])

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if path != "/v1/chat/completions":
            return self._send(404, _error(404, f"no route {path}", "not_found"))
        if not self._authorized():
            return None
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, _error(400, "request body is not JSON", "invalid_json"))
        call = Call(body, {k.lower(): v for k, v in self.headers.items()})
        self.double.record(call)
        if self.double.delay:
            time.sleep(self.double.delay)
        if self.double.upstream:
            return self._forward(call, raw)
        answer = self.double.script(call)
        replies = answer if isinstance(answer, list) else [answer] * call.n
        if replies[0].status != 200:
            return self._send(replies[0].status, _error(replies[0].status, replies[0].error, "injected"))
        if not call.stream:
            return self._send(200, completion(call.model, replies))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_stream(200, "text/event-stream")
        for number, chunk in enumerate(chunks(call.model, replies, include_usage)):
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.double.break_stream and number == 1:
                self.close_connection = True  # the backend "dies" mid-stream: no terminating chunk
                return None
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _start_stream(self, status: int, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk, flushed at once (empty data ends the body)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _forward(self, call: Call, raw: bytes) -> None:
        """Pass the request to the upstream unchanged and relay the answer as it arrives."""
        target = urllib.parse.urlsplit(self.double.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
        headers = {"content-type": "application/json",
                   "authorization": self.headers.get("authorization", "")}
        if "x-request-id" in self.headers:  # a pass-through keeps the mesh's request id
            headers["x-request-id"] = self.headers["x-request-id"]
        try:
            conn.request("POST", f"{target.path.rstrip('/')}/chat/completions", raw, headers)
            upstream = conn.getresponse()
            content_type = upstream.getheader("content-type", "application/json")
            if not call.stream:
                content = upstream.read()
                try:
                    call.usage = json.loads(content).get("usage")
                except (ValueError, AttributeError):
                    pass
                self.send_response(upstream.status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return
            self._start_stream(upstream.status, content_type)
            while piece := upstream.read1(65536):
                self._write_chunk(piece)
            self._write_chunk(b"")
        finally:
            conn.close()


class OpenAIDouble:
    """The double, serving on a thread of this process (`start()`/`stop()` or `with`)."""

    def __init__(self, script: Script | None = None, *, api_key: str = "",
                 models: tuple[str, ...] = ("jerry-tiny",), host: str = "127.0.0.1", port: int = 0,
                 delay: float = 0.0, break_stream: bool = False, upstream: str = "") -> None:
        self.script: Script = script or fixed("hello from the double")
        self.api_key = api_key
        self.models = models
        self.delay = delay
        self.break_stream = break_stream
        self.upstream = upstream
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"double": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (…/v1) to give a client."""
        return f"{self.base}/v1"

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def start(self) -> OpenAIDouble:
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-double",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> OpenAIDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshkit.testing.openai_double",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model-id", default="jerry-tiny")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--reply", default="hello from the double")
    parser.add_argument("--fail-status", type=int, default=0, help="answer every chat with this status")
    parser.add_argument("--upstream", default="", help="forward to this /v1 base and only record calls")
    parser.add_argument("--delay", type=float, default=0.0, help="wait this long before answering a chat")
    parser.add_argument("--break-stream", action="store_true", help="drop the connection after the first chunk")
    args = parser.parse_args(argv)
    script = fixed(args.reply)
    if args.fail_status:
        script = lambda _call: Reply(status=args.fail_status)  # noqa: E731
    double = OpenAIDouble(script, api_key=args.api_key, models=(args.model_id,), host=args.host,
                          port=args.port, delay=args.delay, break_stream=args.break_stream,
                          upstream=args.upstream)
    print(f"READY {double.port}", flush=True)
    try:
        double.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
