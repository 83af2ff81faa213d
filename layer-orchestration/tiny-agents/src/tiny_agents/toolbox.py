"""Connect to the configured MCP servers, list their tools as OpenAI function tools, and run
calls. A failing tool never raises into the loop: it becomes an error text for the model."""

from __future__ import annotations

import json
import os
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tiny_agents.errors import AgentError
from tiny_agents.servers import ServerConfig

# The stdio client passes only a minimal environment (HOME, PATH, ...); uv and the mesh
# tools also need these, so they are forwarded when set.
FORWARDED_ENV_PREFIXES = ("UV_", "HOMELAB_", "WEB_FETCH_", "XDG_")
FORWARDED_ENV = {"CI", "LANG", "LC_ALL", "SSL_CERT_FILE", "VIRTUAL_ENV_DISABLE_PROMPT"}


@dataclass(frozen=True)
class Tool:
    name: str  # name the model sees (unique across servers)
    server: str
    remote_name: str
    description: str
    schema: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description[:1024],
            "parameters": self.schema or {"type": "object", "properties": {}}}}


@dataclass(frozen=True)
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    is_error: bool
    text: str


def _stdio_params(cfg: ServerConfig) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items()
           if k in FORWARDED_ENV or k.startswith(FORWARDED_ENV_PREFIXES)}
    env.update(cfg.env)
    return StdioServerParameters(command=cfg.command or "", args=list(cfg.args), env=env,
                                 cwd=str(cfg.cwd) if cfg.cwd else None)


def describe_exception(exc: BaseException) -> str:
    """`Type: message` of the real cause; anyio wraps single failures in exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def result_text(result: Any) -> str:
    """Model-facing text of a CallToolResult: its text content, as the server wrote it.

    The text, not structuredContent: servers may open it with a plain-language summary (mesh-status
    does), which a small model can repeat as an answer where it cannot read JSON; MCP asks servers
    to put the structured data in the text as well. Structured content as JSON only without text."""
    parts = [getattr(c, "text", None) or f"[{getattr(c, 'type', 'content')}]" for c in result.content or []]
    if not parts and getattr(result, "structured_content", None) is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


class Toolbox:
    """`async with Toolbox(servers, allowed) as tb:` connects to every server up front."""

    def __init__(self, servers: list[ServerConfig], allowed: list[str] | None = None, *, errlog=None) -> None:
        self.servers = servers
        self.allowed = set(allowed) if allowed is not None else None
        self.tools: dict[str, Tool] = {}
        self._clients: dict[str, Client] = {}
        self._stack = AsyncExitStack()
        self._errlog = errlog or sys.stderr

    async def __aenter__(self) -> Toolbox:
        try:
            for cfg in self.servers:
                await self._connect(cfg)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _connect(self, cfg: ServerConfig) -> None:
        if cfg.transport == "stdio":
            target: Any = _stdio_params(cfg)
        else:
            target = streamable_http_client(cfg.url or "", http_client=create_mcp_http_client(headers=cfg.headers or None))
        try:
            client = await self._stack.enter_async_context(Client(target, read_timeout_seconds=120))
            listed = (await client.list_tools()).tools
        except Exception as exc:  # noqa: BLE001 - any failure to start/reach a server is a config problem
            raise AgentError(f"MCP server {cfg.describe()} is unreachable: {describe_exception(exc)}",
                             param="servers", code="mcp_unreachable") from None
        self._clients[cfg.name] = client
        for t in listed:
            # Both filters apply: the server's own allow-list (agent.json) and the global one.
            if cfg.allowed_tools is not None and t.name not in cfg.allowed_tools:
                continue
            if self.allowed is not None and t.name not in self.allowed:
                continue
            name = t.name if t.name not in self.tools else f"{cfg.name}__{t.name}"
            self.tools[name] = Tool(name, cfg.name, t.name, t.description or "", dict(t.input_schema or {}))

    def openai_tools(self) -> list[dict[str, Any]]:
        return [t.openai() for t in self.tools.values()]

    async def call(self, name: str, raw_arguments: str) -> ToolOutcome:
        try:
            arguments = json.loads(raw_arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return ToolOutcome(name, {}, True, f"invalid tool arguments (need a JSON object): {exc}")
        tool = self.tools.get(name)
        if tool is None:
            return ToolOutcome(name, arguments, True,
                               f"unknown tool {name!r}; available: {', '.join(sorted(self.tools)) or 'none'}")
        try:
            result = await self._clients[tool.server].call_tool(tool.remote_name, arguments)
        except Exception as exc:  # noqa: BLE001 - transport failures are reported to the model too
            return ToolOutcome(name, arguments, True, f"tool call failed: {describe_exception(exc)}")
        return ToolOutcome(name, arguments, bool(result.is_error), result_text(result))
