"""llamacpp-server: an OpenAI-compatible backend, the starting point written by `homelab new`.

It answers what the mesh needs from a backend (GET /health, GET /v1/models, POST
/v1/chat/completions, streamed or not) by echoing the last user message. Replace `answer()` with
real inference; keep the routes, the error shape and the key check.
"""

from __future__ import annotations

import hmac
import json
import os
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = "llamacpp-server"
# The ids the gateway sends as `model` (the contract's models[].upstream_id), not the public names.
MODELS = ('jerry-chat-lcpp',)
KEY_ENV = "LLAMACPP_SERVER_API_KEY"  # the key the gateway sends (contract gateway_auth_env); unset: no auth


def answer(model: str, messages: list[dict[str, Any]]) -> str:
    """The reply to a conversation. The starting point echoes the last user message."""
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"{SERVICE} ({model}) echoes: {last if isinstance(last, str) else json.dumps(last)}"


def error(status: int, message: str, kind: str, param: str | None = None,
          code: str | None = None) -> tuple[int, dict[str, Any]]:
    """OpenAI's error shape, so every client shows the message."""
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def validate(body: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", "invalid_request_error")
    if body.get("model") not in MODELS:
        return error(404, f"model {body.get('model')!r} is not served here; served: "
                          f"{', '.join(MODELS)}", "invalid_request_error", "model", "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return error(400, "messages must be a non-empty list of {role, content} objects",
                     "invalid_request_error", "messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        return error(400, "stream must be true or false", "invalid_request_error", "stream")
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = os.environ.get(KEY_ENV, "")
        if not key:
            return True
        sent = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), key.encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path == "/health":
            self._json(200, {"status": "ok", "service": SERVICE})
        elif self.path == "/v1/models":
            if not self._authorized():
                self._json(*error(401, "missing or wrong API key", "authentication_error"))
                return
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": SERVICE} for m in MODELS]})
        else:
            self._json(*error(404, f"no route GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != "/v1/chat/completions":
            self._json(*error(404, f"no route POST {self.path}", "not_found_error"))
            return
        if not self._authorized():
            self._json(*error(401, "missing or wrong API key", "authentication_error"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(*error(400, "the body is not valid JSON", "invalid_request_error"))
            return
        if (problem := validate(body)) is not None:
            self._json(*problem)
            return
        text = answer(body["model"], body["messages"])
        if body.get("stream"):
            self._stream(body["model"], text)
        else:
            self._json(200, completion(body["model"], text))

    def _stream(self, model: str, text: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        deltas = [{"role": "assistant", "content": ""}, *({"content": w} for w in
                  _words(text)), {}]
        for i, delta in enumerate(deltas):
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": "stop" if i == len(deltas) - 1 else None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.address_string()} {fmt % args}", flush=True)


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def completion(model: str, text: str) -> dict[str, Any]:
    tokens = len(text.split())
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}}


def serve(host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"{SERVICE} listening on {host}:{port}, models {', '.join(MODELS)}", flush=True)
    server.serve_forever()
