"""layer-tools/registry.yaml: the MCP tool registry, from the mcp-tool contracts."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from homelab.addresses import base_url
from homelab.load.repo import Repo
from homelab.render.header import banner

REGISTRY_FILE = "layer-tools/registry.yaml"


def registry(repo: Repo) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for svc in sorted(repo.by_kind("mcp-tool"), key=lambda s: s.name):
        mcp = svc.spec.mcp
        assert mcp is not None
        entry: dict[str, Any] = {"purpose": mcp.purpose, "transport": mcp.transport,
                                 "host": svc.spec.host}
        url = base_url(repo, svc)
        if url:
            entry["url"] = url + mcp.path
            entry["port"] = svc.spec.port
        if mcp.stdio_command:
            cmd = mcp.stdio_command
            args = list(cmd[1:])
            if cmd[0] == "uv" and args[:1] == ["run"]:  # run it from anywhere in the checkout
                args = ["run", "--project", svc.rel_dir, *args[1:]]
            entry["stdio"] = {"command": cmd[0], "args": args}
        entry["tools"] = {t.name: {"description": t.description, "inputs": dict(t.inputs),
                                   "outputs": t.outputs, "failure_modes": list(t.failure_modes)}
                          for t in mcp.tools}
        servers[svc.name] = entry
    return {"servers": servers}


def render_registry(repo: Repo) -> str:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    buf = io.StringIO()
    y.dump(registry(repo), buf)
    sources = "layer-tools/*/SERVICE_SPEC.md (kind mcp-tool)"
    return banner(sources) + buf.getvalue()
