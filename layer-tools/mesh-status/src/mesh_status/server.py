"""The MCP server: list_models, service_health, topology; GET /health on the HTTP transport.

The mesh view (HOMELAB_MESH_VIEW, rendered from the contracts by `homelab render`) is re-read on
every call (and on every tools/list, for the names service_health accepts), so the answers follow
a re-render without a restart. Each result's text starts with
a plain-language summary (summaries.py), then the rows as JSON; structuredContent holds the rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from mcp.types import Tool as MCPTool
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from meshkit.view import View, ViewError, load_view

from mesh_status import __doc__ as purpose
from mesh_status import health, summaries, views

GATEWAY_WORD = "gateway"  # what users call it; resolves to the view's gateway service


def _result(summary: str, data: Any) -> CallToolResult:
    structured = {"result": data} if isinstance(data, list) else data
    return CallToolResult(content=[TextContent(type="text", text=summary),
                                   TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
                          structured_content=structured)


def health_names(m: View) -> list[str]:
    """Every value service_health accepts: probed services, the models they serve, `gateway`."""
    probed = [s.name for s in health.probe_targets(m)]
    owners = {r["name"]: r["service"] for r in views.list_models(m)}
    names = probed + sorted(n for n, owner in owners.items() if owner in probed)
    if summaries.gateway_name(m) in probed:
        names.append(GATEWAY_WORD)
    return names


class MeshStatusServer(MCPServer):
    def __init__(self, loader: Callable[[], View]) -> None:
        super().__init__("mesh-status", instructions=purpose, version="0.1.0")
        self._loader = loader

    async def list_tools(self) -> list[MCPTool]:
        """service_health's `service` lists the names valid right now (an enum): a client that
        constrains arguments to the schema (ov-server does) can then only send a valid one."""
        tools = await super().list_tools()
        try:
            names = health_names(self._loader())
        except ViewError:
            return tools  # the call itself reports the unreadable view
        for t in tools:
            prop = (t.input_schema.get("properties") or {}).get("service") if t.name == "service_health" else None
            if prop is not None and names:
                prop["anyOf"] = [{"type": "string", "enum": names}, {"type": "null"}]
        return tools


def build_server(loader: Callable[[], View] = load_view) -> MCPServer:
    server = MeshStatusServer(loader)

    def mesh() -> View:
        try:
            return loader()
        except ViewError as exc:
            raise ToolError(f"mesh view unreadable: {exc}") from None

    @server.tool()
    def list_models() -> Annotated[CallToolResult, list[dict[str, Any]]]:
        """Answers "which models are there?", "which service serves model X?" and "on which host
        does model X run?". Rows: every logical model name the gateway serves, with the backend
        service, host, address and port behind it (kind `model`), and optimizer aliases (kind
        `alias`, approach + target)."""
        m = mesh()
        rows = views.list_models(m)
        return _result(summaries.models_summary(m, rows), rows)

    @server.tool()
    async def service_health(
        service: Annotated[str | None, Field(description="A service name, a model name (probes the service "
                                             "serving it), or `gateway`; omit for every service.")] = None,
    ) -> Annotated[CallToolResult, list[dict[str, Any]]]:
        """Answers "is X up?", "is X healthy?", "is X running?" for a service, a model or the
        gateway, by probing its health endpoint live; without `service`, every service. Rows:
        service, url, healthy, status, latency_ms, error, required."""
        m = mesh()
        targets = health.probe_targets(m)
        models = views.list_models(m)
        if service:
            owner = {r["name"]: r["service"] for r in models}.get(service, service)
            if service == GATEWAY_WORD and summaries.gateway_name(m):
                owner = summaries.gateway_name(m)
            if owner not in m.services:
                shown = service if len(service) <= 100 else f"{service[:100]}... ({len(service)} characters)"
                raise ToolError(f"unknown service name {shown!r}; known: {', '.join(health_names(m))}")
            targets = [s for s in targets if s.name == owner]
            if not targets:
                raise ToolError(f"service {owner!r} has no HTTP health endpoint in its contract")
        rows = await health.check(targets)
        return _result(summaries.health_summary(m, rows, service or None, models), rows)

    @server.tool()
    def topology() -> Annotated[CallToolResult, dict[str, Any]]:
        """Answers "what is the mesh called?", "which hosts are there, at which address?", "which
        services run, where?" and "which service is the gateway?". Data: the mesh name, the
        gateway, hosts, and every service's kind, host, bind address, port, URL and exposure."""
        topo = views.topology(mesh())
        return _result(summaries.topology_summary(topo), topo)

    @server.custom_route("/health", methods=["GET"])
    async def health_route(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "mesh-status"})

    return server
