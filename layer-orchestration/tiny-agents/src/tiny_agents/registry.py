"""The MCP tool servers: by default the mesh view's (meshkit.view), or a registry YAML given with
--registry / TINYAGENTS_REGISTRY (layer-tools/registry.yaml has the same entries).

Transport rule (one rule, no magic): `--transport stdio|http` picks it for every server;
default stdio, so the agent works without any tool server running. stdio commands run from the
repo root, i.e. the registry (or view) file's grandparent folder (paths in it are relative to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from meshkit.view import View

from tiny_agents.errors import AgentError
from tiny_agents.servers import ServerConfig

TRANSPORTS = ("stdio", "http")


def load(path: Path, *, transport: str = "stdio", only: list[str] | None = None) -> list[ServerConfig]:
    _check_transport(transport)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentError(f"MCP registry {path}: {exc.strerror or exc} (set --registry or TINYAGENTS_REGISTRY; "
                         "`uv run homelab render` writes it)", param="registry") from None
    except yaml.YAMLError as exc:
        raise AgentError(f"MCP registry {path}: invalid YAML: {exc}", param="registry") from None
    servers = (data or {}).get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise AgentError(f"MCP registry {path}: expected a top-level `servers:` mapping", param="registry")
    return _servers(f"MCP registry {path}", path.resolve().parent.parent, servers, transport, only)


def _check_transport(transport: str) -> None:
    if transport not in TRANSPORTS:
        raise AgentError(f"--transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}", param="transport")


def _servers(source: str, root: Path, servers: dict[Any, Any], transport: str,
             only: list[str] | None) -> list[ServerConfig]:
    _check_transport(transport)
    unknown = sorted(set(only or []) - set(servers))
    if unknown:
        raise AgentError(f"--servers: {', '.join(unknown)} not in {source.split(' ', 2)[-1]} "
                         f"(has: {', '.join(sorted(servers))})", param="servers")
    return [_server(source, root, str(name), entry, transport) for name, entry in servers.items()
            if not only or name in only]


def _server(source: str, root: Path, name: str, entry: Any, transport: str) -> ServerConfig:
    where = f"{source}: servers.{name}"
    if not isinstance(entry, dict):
        raise AgentError(f"{where}: expected a mapping", param="registry")
    if transport == "http":
        url = entry.get("url")
        if not url:
            raise AgentError(f"{where}: no `url` for --transport http (it may be stdio-only)", param="registry")
        return ServerConfig(name, "http", url=str(url))
    stdio = entry.get("stdio")
    if not isinstance(stdio, dict) or not stdio.get("command"):
        raise AgentError(f"{where}: no `stdio.command` for --transport stdio", param="registry")
    env = {str(k): str(v) for k, v in (stdio.get("env") or {}).items()}
    return ServerConfig(name, "stdio", command=str(stdio["command"]),
                        args=tuple(str(a) for a in stdio.get("args") or []), env=env, cwd=root)


def from_view(view: View, *, transport: str = "stdio", only: list[str] | None = None) -> list[ServerConfig]:
    """The mesh view's MCP servers (the registry `homelab render` writes, in the view). stdio
    commands run from the checkout the view belongs to (<root>/mesh/view.json)."""
    servers = {name: {"url": m.url, **({"stdio": {"command": m.stdio_command, "args": list(m.stdio_args)}}
                                       if m.stdio_command else {})}
               for name, m in view.mcp.items()}
    return _servers(f"mesh view {view.path}", view.path.resolve().parent.parent, servers, transport, only)
