"""A transparent reverse proxy between Open WebUI and the gateway that records what crosses it.

Bytes pass through unchanged and as they arrive (a stream stays a stream); for every POST it keeps
the JSON body Open WebUI sent and, for an SSE answer, how many events carried answer text. This is
how the captured request shapes in tests/captured/ were recorded, and how the browser test checks
that Open WebUI still sends them and relays every streamed chunk.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass
class Exchange:
    path: str
    body: dict | str
    status: int = 0
    content_chunks: int = 0  # SSE events whose delta carried answer text
    text: str = ""
    error_body: str = ""  # the answer when it was not 200 (e.g. the gateway's error JSON)
    finished: bool = False


@dataclass
class WireRecorder:
    upstream: str  # e.g. http://127.0.0.1:4000 (no /v1)
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0

    def chats(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]

    def app(self) -> Starlette:
        client = httpx.AsyncClient(timeout=600, trust_env=False)

        async def proxy(request: Request) -> Response:
            raw = await request.body()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = await client.send(
                client.build_request(request.method, self.upstream + request.url.path, content=raw,
                                     headers=headers, params=request.query_params), stream=True)
            exchange = None
            if request.method == "POST":
                try:
                    body: dict | str = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                exchange = Exchange(request.url.path, body, upstream.status_code)
                self.exchanges.append(exchange)

            async def relay():
                pending = b""
                async for chunk in upstream.aiter_raw():
                    yield chunk
                    if exchange is not None and exchange.status != 200:
                        exchange.error_body += chunk.decode(errors="replace")
                    elif exchange is not None:
                        pending = _count_events(exchange, pending + chunk)
                await upstream.aclose()
                if exchange is not None:
                    exchange.finished = True

            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return StreamingResponse(relay(), status_code=upstream.status_code, headers=out)

        return Starlette(routes=[Route("/{path:path}", proxy, methods=["GET", "POST"])])

    def start(self) -> WireRecorder:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                                     log_level="warning"))
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("wire recorder did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True


def _count_events(exchange: Exchange, buffer: bytes) -> bytes:
    """Consume complete SSE lines from `buffer`; return the incomplete rest."""
    *lines, rest = buffer.split(b"\n")
    for line in lines:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            if piece:
                exchange.content_chunks += 1
                exchange.text += piece
    return rest
