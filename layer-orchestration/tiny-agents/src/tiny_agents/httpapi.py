"""HTTP mode on loopback: POST /run {"question", "max_steps"?} -> the run result; GET /health.

Every request first passes `httpguard` (Host, Origin, key). MCP sessions are opened once before
the server starts (cli.cmd_serve), so an unreachable tool server is a clear start-up error, and
are shared by all requests. Every answer, errors included, is JSON in OpenAI's shape: a client
never gets Starlette's plain-text 404/405/500, and a 500 carries no detail of our machine."""

from __future__ import annotations

import logging

import openai
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tiny_agents import runrequest
from tiny_agents.config import AgentConfig
from tiny_agents.errors import AgentError
from tiny_agents.httpguard import GuardMiddleware, error_response
from tiny_agents.loop import Agent
from tiny_agents.toolbox import Toolbox

log = logging.getLogger("tiny_agents.http")


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the service log for the operator, never to the client.
    log.error("unexpected error in a request", exc_info=exc)
    return error_response(500, "internal error in tiny-agents (details are in its log)", type_="server_error",
                          code="internal_error")


def build_app(cfg: AgentConfig, toolbox: Toolbox, client: openai.AsyncOpenAI, *, key: str) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": cfg.model, "gateway": cfg.gateway,
                             "tools": sorted(toolbox.tools)})

    async def run(request: Request) -> JSONResponse:
        try:
            runrequest.check_content_type(request.headers.get("content-type"))
            raw = await runrequest.read_limited(request.headers.get("content-length"), request.stream())
            body = runrequest.parse(raw, cfg.max_steps)
        except runrequest.RequestError as exc:
            return error_response(exc.status, exc.message, param=exc.param)
        agent = Agent(client, cfg.model, toolbox, max_steps=body.max_steps,
                      system_prompt=cfg.system_prompt, stream=cfg.stream)
        try:
            result = await agent.run(body.question)
        except AgentError as exc:
            return error_response(502, exc.message, type_="upstream_error", code=exc.code)
        return JSONResponse(result.as_dict())

    return Starlette(
        routes=[Route("/health", health, methods=["GET"]), Route("/run", run, methods=["POST"])],
        middleware=[Middleware(GuardMiddleware, key=key)],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
