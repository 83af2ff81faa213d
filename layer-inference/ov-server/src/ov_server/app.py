"""The ASGI app: routes, auth, and OpenAI-shaped errors for everything."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from meshkit import requestid
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .accounting import RequestRecord
from .chat import Choice, _messages, cancel_unfinished, complete, plan_request, start, stream
from .config import Settings
from .engine import EngineRejected, wait_admitted
from .errors import APIError, bad_request
from .manager import EngineFactory, ModelManager
from .metrics import CONTENT_TYPE, NoMetrics, ServerMetrics
from .schema_check import check_depth, check_request_schemas, rejection
from .schemas import ChatCompletionRequest

log = logging.getLogger("ov_server.app")

_TYPE_WORDS = {"str", "int", "float", "bool", "list", "dict", "none"}
_ROLES = {"system", "developer", "user", "assistant", "tool"}


def _param_from_loc(loc: tuple, err_type: str) -> str:
    """('messages', 0, 'user', 'content') -> 'messages[0].content'."""
    out = ""
    prev: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not isinstance(part, str) or not part.isidentifier() or part.lower() in _TYPE_WORDS \
                or part[:1].isupper() or (isinstance(prev, int) and part in _ROLES and out.startswith("messages")):
            pass  # union branch / discriminator tag, not a field
        else:
            out += ("." if out else "") + part
        prev = part
    if err_type in ("union_tag_invalid", "union_tag_not_found"):
        out += ".role"
    return out or "body"


async def _sse(payloads: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """Frame JSON payloads as SSE events. Starlette's StreamingResponse stops
    (cancels this generator) when the client disconnects."""
    try:
        async for data in payloads:
            yield f"data: {data}\n\n".encode()
    finally:
        await payloads.aclose()  # runs stream()'s cleanup: cancel generation


def _stream_ended(choices: list[Choice], record: RequestRecord) -> None:
    cancel_unfinished(choices)
    record.done(200)  # the status line went out with the first chunk


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def validation_error(exc: ValidationError | RequestValidationError) -> APIError:
    errors = exc.errors()
    # For a union field every branch reports; the branch whose *type* matched
    # (e.g. a list that is too long) says more than "should be a string".
    specific = [e for e in errors if not str(e.get("type", "")).endswith("_type")]
    err = (specific or errors)[0]
    loc = tuple(err.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    param = _param_from_loc(loc, err.get("type", ""))
    if err.get("type") == "missing":
        return bad_request(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    msg = err.get("msg", "invalid value")
    return bad_request(f"Invalid value for '{param}': {msg}.", param=param, code="invalid_value")


def create_app(settings: Settings, engine_factory: EngineFactory | None = None, log_level: str = "INFO") -> FastAPI:
    """`engine_factory` None: one engine process per model (the product); tests may pass another."""
    manager = ModelManager(settings, engine_factory, log_level=log_level)
    metrics = ServerMetrics(manager.gauges) if settings.metrics else NoMetrics()
    manager.metrics = metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()
        yield
        manager.stop()  # stops the engine processes

    app = FastAPI(title="ov-server", version=__version__, lifespan=lifespan,
                  description="OpenVINO GenAI backend with an OpenAI-compatible API.")
    app.state.manager = manager
    app.state.metrics = metrics
    # x-request-id in, in every log line of the request (`rid=`), in error bodies, and back out.
    app.add_middleware(requestid.ASGIMiddleware)

    def check_auth(request: Request) -> None:
        key = settings.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), key.encode()):
            raise APIError(401, "Missing or invalid API key (send 'Authorization: Bearer <key>').",
                           code="invalid_api_key")

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return APIError(exc.status_code, str(exc.detail), code=code).response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the traceback, never the request body
        return APIError(500, f"internal error: {type(exc).__name__}", code="internal_error").response()

    @app.get("/health")
    async def health() -> JSONResponse:
        status, body = manager.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        # Open like /health (the service binds to loopback; the scrape sends no key): only counts,
        # timings and the model ids /health already shows. OV_SERVER_METRICS=0 turns it off.
        if not metrics.enabled:
            raise APIError(404, "metrics are turned off (OV_SERVER_METRICS=0)", code="not_found")
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict:
        check_auth(request)
        now = int(time.time())
        return {"object": "list",
                "data": [{"id": m, "object": "model", "created": now, "owned_by": "ov-server"}
                         for m in manager.model_ids()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request) -> dict:
        check_auth(request)
        manager.get(model_id)  # 404 in OpenAI shape when unknown
        return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "ov-server"}

    body_schema = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = body_schema.pop("$defs", {})

    @app.post(
        "/v1/chat/completions",
        openapi_extra={"requestBody": {"required": True,
                                       "content": {"application/json": {"schema": body_schema}}}},
    )
    async def chat_completions(request: Request):
        record = RequestRecord(metrics)
        try:
            response = await _chat(request, record)
        except APIError as exc:
            record.done(exc.status)
            raise
        except Exception:
            record.done(500)
            raise
        if not isinstance(response, StreamingResponse):  # a stream is recorded when it ends
            record.done(response.status_code)
        return response

    async def _chat(request: Request, record: RequestRecord) -> Response:
        check_auth(request)
        raw = await request.body()
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"Invalid JSON body: {exc}", code="invalid_json") from None
        except RecursionError:  # the JSON parser's own limit, about 1000 levels
            raise bad_request("Invalid JSON body: nested too deeply.", code="invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request("The request body must be a JSON object.", code="invalid_json")
        record.model = manager.served(data.get("model"))
        check_depth(data)
        try:
            req = ChatCompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None
        check_request_schemas(req)
        record.log_prompt(_messages(req))
        engine = manager.get(req.model)
        plan = plan_request(req, engine)
        choices, queue = start(engine, plan)
        record.plan, record.choices = plan, choices
        try:
            # The engine process has taken every sequence (or said why not) before the first byte.
            await wait_admitted(c.seq for c in choices if c.seq is not None)
        except EngineRejected as exc:
            raise rejection(req, exc.message, exc.status, exc.grammar) from None
        if plan.stream:
            # The background task also covers a client gone before the first
            # chunk (the generator's own cleanup never runs then).
            return StreamingResponse(_sse(stream(plan, choices, queue)), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                     background=BackgroundTask(_stream_ended, choices, record))
        result = await complete(plan, choices, queue, request.is_disconnected)
        if result is None:  # client gone; nobody will read this
            return JSONResponse({}, status_code=499)
        return JSONResponse(result)

    # Components referenced by the request body schema (for /openapi.json users).
    orig_openapi = app.openapi

    def openapi() -> dict:
        schema = orig_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
