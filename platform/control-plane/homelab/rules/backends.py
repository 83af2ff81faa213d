"""HL5xx: backends speak the mesh's API; public names follow the naming pattern; MCP tools are
reachable the way they say."""

from __future__ import annotations

import re
from collections.abc import Iterator

from homelab.contract.service import ServiceSpec
from homelab.load.repo import MESH_FILE
from homelab.rules.base import Context, Violation

BACKEND_ENDPOINTS = (("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/health"))


def backend_endpoints(spec: ServiceSpec) -> tuple[tuple[str, str], ...]:
    """What a backend must serve: the mesh's own API, or for an external server (Ollama,
    llama-server, vLLM...) the OpenAI API under its `api_path` and its own health path."""
    if spec.external is None or spec.health is None:
        return BACKEND_ENDPOINTS
    api = spec.external.api_path
    return (("POST", f"{api}/chat/completions"), ("GET", f"{api}/models"), ("GET", spec.health.path))


def check(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    try:
        pattern = re.compile(repo.mesh.model_name_pattern)
    except re.error as exc:
        yield Violation(MESH_FILE, repo.sources[MESH_FILE].line("model_name_pattern"), "HL502",
                        "model-name-pattern", f"model_name_pattern is not a valid regex: {exc}")
        return
    for svc in repo.services.values():
        spec, src = svc.spec, svc.source
        if spec.kind == "backend":
            have = {(e.method, e.path) for e in spec.endpoints}
            for method, path in backend_endpoints(spec):
                if (method, path) not in have:
                    yield Violation(src.path, src.line("endpoints") or src.line("kind"), "HL501", "backend-endpoint-missing",
                                    f"backend {spec.name} does not declare {method} {path}")
        for key, items in (("models", spec.models), ("aliases", spec.aliases)):
            for i, item in enumerate(items):
                if not pattern.fullmatch(item.name):
                    yield Violation(src.path, src.line(key, i, "name"), "HL502", "model-name-pattern",
                                    f"public name {item.name!r} does not match the mesh pattern "
                                    f"{repo.mesh.model_name_pattern}")
        if spec.mcp:
            if spec.mcp.transport == "streamable-http" and spec.port is None:
                yield Violation(src.path, src.line("mcp", "transport"), "HL503", "mcp-transport",
                                f"{spec.name} serves streamable HTTP but declares no bind/port")
            if spec.mcp.transport == "stdio" and not spec.mcp.stdio_command:
                yield Violation(src.path, src.line("mcp", "transport"), "HL503", "mcp-transport",
                                f"{spec.name} serves stdio but declares no mcp.stdio_command")
            if spec.mcp.transport == "streamable-http" and \
                    ("POST", spec.mcp.path) not in {(e.method, e.path) for e in spec.endpoints}:
                yield Violation(src.path, src.line("endpoints") or src.line("mcp", "path") or src.line("mcp"), "HL503", "mcp-transport",
                                f"{spec.name} does not declare its MCP endpoint POST {spec.mcp.path}")
