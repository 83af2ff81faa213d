"""A fast OpenAI-shaped backend double that records every call it receives.

Used where the real ov-server is NOT what is under test: gateway routing/fallback mechanics, the
benchmark (a trivial backend isolates gateway overhead), and as a counting proxy in front of the
real ov-server (`--upstream`) to count the calls an OptiLLM approach makes.

    python backend.py --port 0 [--model-id jerry-tiny] [--api-key K] [--upstream URL]
                      [--fail-status N] [--delay S] [--break-stream]

Prints `READY <port>` on stdout once listening. `GET /_calls` lists recorded calls
(model, n, stream, x-request-id; with --upstream also the usage of non-streamed answers), `DELETE /_calls` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import uuid

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CALLS: list[dict] = []
ARGS: argparse.Namespace


def _err(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
        status_code=status,
    )


def _authorized(request: Request) -> bool:
    if not ARGS.api_key:
        return True
    return request.headers.get("authorization", "") == f"Bearer {ARGS.api_key}"


async def chat(request: Request) -> Response:
    if not _authorized(request):
        return _err(401, "bad key", "invalid_api_key")
    body = await request.json()
    CALLS.append({"model": body.get("model"), "n": body.get("n", 1), "stream": bool(body.get("stream")),
                  "request_id": request.headers.get("x-request-id")})
    if ARGS.delay:
        await asyncio.sleep(ARGS.delay)
    if ARGS.fail_status:
        return _err(ARGS.fail_status, "injected failure", "injected_failure")
    if ARGS.upstream:
        return await _forward(request, body)
    n = int(body.get("n") or 1)
    created = int(time.time())
    rid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    text = f"{ARGS.reply} #{len(CALLS)}"
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    if body.get("stream"):
        return StreamingResponse(_stream(rid, created, body, n, text, usage), media_type="text/event-stream")
    return JSONResponse({
        "id": rid, "object": "chat.completion", "created": created, "model": body.get("model"),
        "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"} for i in range(n)],
        "usage": usage,
    })


async def _stream(rid, created, body, n, text, usage):
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": body.get("model")}
    for i in range(n):
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            chunk = {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": piece},
                                          "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            if ARGS.break_stream:
                raise ConnectionAbortedError("injected: the backend died in the middle of the stream")
        yield f"data: {json.dumps({**base, 'choices': [{'index': i, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


async def _forward(request: Request, body: dict) -> Response:
    """Pass the request through unchanged (streams chunk by chunk); record the usage of whole answers."""
    headers = {"authorization": request.headers.get("authorization", ""), "content-type": "application/json"}
    if "x-request-id" in request.headers:  # a pass-through keeps the mesh's request id
        headers["x-request-id"] = request.headers["x-request-id"]
    client = httpx.AsyncClient(timeout=300)
    upstream_req = client.build_request("POST", f"{ARGS.upstream}/chat/completions", json=body, headers=headers)
    upstream = await client.send(upstream_req, stream=True)
    if not body.get("stream"):
        try:
            content = await upstream.aread()
        finally:
            await upstream.aclose()
            await client.aclose()
        try:
            CALLS[-1]["usage"] = json.loads(content).get("usage")
        except ValueError:
            pass
        return Response(content, status_code=upstream.status_code, media_type=upstream.headers.get("content-type"))

    async def relay():
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(relay(), status_code=upstream.status_code,
                             media_type=upstream.headers.get("content-type"))


async def models(request: Request) -> Response:
    if not _authorized(request):
        return _err(401, "bad key", "invalid_api_key")
    return JSONResponse({"object": "list", "data": [
        {"id": ARGS.model_id, "object": "model", "created": 0, "owned_by": "double"}]})


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def calls(request: Request) -> Response:
    if request.method == "DELETE":
        CALLS.clear()
    return JSONResponse(CALLS)


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model-id", default="jerry-tiny")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--reply", default="hello from the double")
    parser.add_argument("--fail-status", type=int, default=0, help="answer every chat with this status")
    parser.add_argument("--upstream", default="", help="forward to this /v1 base and only count calls")
    parser.add_argument("--delay", type=float, default=0.0, help="wait this long before answering a chat")
    parser.add_argument("--break-stream", action="store_true", help="drop the connection after the first chunk")
    ARGS = parser.parse_args()
    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models), Route("/health", health),
        Route("/_calls", calls, methods=["GET", "DELETE"]),
    ])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ARGS.host, ARGS.port))
    print(f"READY {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
