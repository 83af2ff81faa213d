"""Optional HTTP mode on loopback: POST /run {"question", "max_steps"?} -> the run result;
GET /health. MCP sessions are opened once before the server starts (cli.cmd_serve), so an
unreachable tool server is a clear start-up error, and are shared by all requests."""

from __future__ import annotations

import openai
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tiny_agents.config import AgentConfig
from tiny_agents.errors import AgentError
from tiny_agents.loop import Agent
from tiny_agents.toolbox import Toolbox


def error(status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status)


def build_app(cfg: AgentConfig, toolbox: Toolbox, client: openai.AsyncOpenAI) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": cfg.model, "gateway": cfg.gateway,
                             "tools": sorted(toolbox.tools)})

    async def run(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "request body must be JSON")
        if not isinstance(body, dict):
            return error(400, "request body must be a JSON object")
        question = body.get("question", body.get("prompt"))
        if not isinstance(question, str) or not question.strip():
            return error(400, "`question` must be a non-empty string", param="question")
        max_steps = body.get("max_steps", cfg.max_steps)
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or not 1 <= max_steps <= 50:
            return error(400, "`max_steps` must be an integer from 1 to 50", param="max_steps")
        agent = Agent(client, cfg.model, toolbox, max_steps=max_steps,
                      system_prompt=cfg.system_prompt, stream=cfg.stream)
        try:
            result = await agent.run(question)
        except AgentError as exc:
            return error(502, exc.message, type_="upstream_error", code=exc.code)
        return JSONResponse(result.as_dict())

    return Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/run", run, methods=["POST"])])
