"""The MCP server: list_models, service_health, topology; GET /health on the HTTP transport.

Contracts are re-read on every call, so the answers follow the checkout without a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse

from mesh_status import __doc__ as purpose
from mesh_status import health, views
from mesh_status.contracts import ContractsError, Mesh, load


def build_server(loader: Callable[[], Mesh] = load) -> MCPServer:
    server = MCPServer("mesh-status", instructions=purpose, version="0.1.0")

    def mesh() -> Mesh:
        try:
            return loader()
        except ContractsError as exc:
            raise ToolError(f"contracts unreadable: {exc}") from None

    @server.tool()
    def list_models() -> list[dict[str, Any]]:
        """Logical model names the gateway serves, with the backend service, host, address and
        port behind each (kind `model`), and optimizer aliases (kind `alias`, approach + target)."""
        return views.list_models(mesh())

    @server.tool()
    async def service_health(service: str | None = None) -> list[dict[str, Any]]:
        """Live health of every service with a health endpoint, probed concurrently; or of one
        service. `service` may also be a model name: then the service serving it is probed.
        Each row: service, url, healthy, status, latency_ms, error, required."""
        m = mesh()
        targets = health.probe_targets(m)
        if service:
            owner = {r["name"]: r["service"] for r in views.list_models(m)}.get(service, service)
            if owner not in m.services:
                shown = service if len(service) <= 100 else f"{service[:100]}... ({len(service)} characters)"
                raise ToolError(f"unknown service name {shown!r}; known: {', '.join(sorted(m.services))}")
            targets = [s for s in targets if s.name == owner]
            if not targets:
                raise ToolError(f"service {owner!r} has no HTTP health endpoint in its contract")
        return await health.check(m, targets)

    @server.tool()
    def topology() -> dict[str, Any]:
        """Hosts, the gateway, and every service's kind, host, bind address, port, URL and
        exposure (localhost or lan)."""
        return views.topology(mesh())

    @server.custom_route("/health", methods=["GET"])
    async def health_route(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "mesh-status"})

    return server
