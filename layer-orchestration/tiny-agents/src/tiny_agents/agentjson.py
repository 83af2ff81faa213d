"""Accept a Hugging Face tiny-agents `agent.json` so users can bring existing agent configs.

Format: {"model", "endpointUrl", "apiKey", "provider", "servers": [{"type": "stdio", "command",
"args", "env", "cwd", "allowed_tools"} | {"type": "http"|"sse", "url", "headers", "allowed_tools"}],
"allowed_tools", "inputs"}; older files nest a server's fields under "config", which is accepted
too. A server's `allowed_tools` limits what THAT server may offer, as in Hugging Face's client
(dropping it would hand the model tools the author withheld); the top-level `allowed_tools` is
our extension and applies on top. `${input:ID}` placeholders are filled from the environment
variable ID (upper-cased, '-' -> '_'). The system prompt is PROMPT.md, else AGENTS.md, in the
agent's folder (Hugging Face's order). Hub providers (`provider` without `endpointUrl`) are
refused: we call the gateway."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiny_agents.errors import AgentError
from tiny_agents.servers import ServerConfig

PLACEHOLDER = re.compile(r"\$\{input:([A-Za-z0-9_.-]+)\}")
PROMPT_FILES = ("PROMPT.md", "AGENTS.md")  # first one present wins, as in huggingface_hub


@dataclass(frozen=True)
class AgentFile:
    path: Path
    model: str | None = None
    endpoint_url: str | None = None
    api_key: str | None = None
    servers: list[ServerConfig] = field(default_factory=list)
    allowed_tools: list[str] | None = None
    system_prompt: str | None = None


def _fill(value: Any, env: dict[str, str], where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            var = m.group(1).upper().replace("-", "_").replace(".", "_")
            if var not in env:
                raise AgentError(f"{where}: ${{input:{m.group(1)}}} needs environment variable {var}",
                                 param="agent")
            return env[var]
        return PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [_fill(v, env, where) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, env, where) for k, v in value.items()}
    return value


def load(path: Path, env: dict[str, str] | None = None) -> AgentFile:
    env = dict(os.environ) if env is None else env
    path = path.resolve()  # stdio servers run from the file's folder
    if path.is_dir():
        path = path / "agent.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentError(f"agent file {path}: {exc.strerror or exc}", param="agent") from None
    except json.JSONDecodeError as exc:
        raise AgentError(f"agent file {path}: invalid JSON at line {exc.lineno}: {exc.msg}", param="agent") from None
    if not isinstance(data, dict):
        raise AgentError(f"agent file {path}: expected a JSON object", param="agent")
    data = _fill(data, env, f"agent file {path}")
    if data.get("provider") and not data.get("endpointUrl"):
        raise AgentError(f"agent file {path}: `provider` {data['provider']!r} would call a hosted service; "
                         "this agent calls the mesh gateway only: set `endpointUrl` to the gateway or drop `provider`",
                         param="agent")
    servers = data.get("servers") or []
    if not isinstance(servers, list):
        raise AgentError(f"agent file {path}: servers must be a list", param="agent")
    allowed = _tool_names(data.get("allowed_tools", data.get("allowedTools")), f"agent file {path}: allowed_tools")
    return AgentFile(
        path=path, model=data.get("model"), endpoint_url=data.get("endpointUrl"), api_key=data.get("apiKey"),
        servers=[_server(path, i, s) for i, s in enumerate(servers)],
        allowed_tools=sorted(allowed) if allowed is not None else None,
        system_prompt=_prompt(path.parent),
    )


def _tool_names(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(t, str) for t in value)):
        raise AgentError(f"{where} must be a list of tool names", param="agent")
    return frozenset(value)


def _prompt(folder: Path) -> str | None:
    for name in PROMPT_FILES:
        candidate = folder / name
        if candidate.is_file():
            try:
                return candidate.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AgentError(f"prompt file {candidate}: {exc}", param="agent") from None
    return None


def _server(path: Path, index: int, entry: Any) -> ServerConfig:
    where = f"agent file {path}: servers[{index}]"
    if not isinstance(entry, dict):
        raise AgentError(f"{where}: expected an object", param="agent")
    nested = entry.get("config") or {}
    if not isinstance(nested, dict):
        raise AgentError(f"{where}: config must be an object", param="agent")
    conf = {**entry, **nested}
    kind = conf.get("type", "stdio")
    name = str(conf.get("name") or f"server{index}")
    allowed = _tool_names(conf.get("allowed_tools", conf.get("allowedTools")), f"{where}: allowed_tools")
    if kind == "stdio":
        if not conf.get("command"):
            raise AgentError(f"{where}: a stdio server needs `command`", param="agent")
        cwd = Path(conf["cwd"]) if conf.get("cwd") else path.parent
        return ServerConfig(name, "stdio", command=str(conf["command"]),
                            args=tuple(str(a) for a in conf.get("args") or []),
                            env={str(k): str(v) for k, v in (conf.get("env") or {}).items()},
                            cwd=cwd if cwd.is_absolute() else (path.parent / cwd), allowed_tools=allowed)
    if kind in ("http", "sse"):
        if not conf.get("url"):
            raise AgentError(f"{where}: an http server needs `url`", param="agent")
        return ServerConfig(name, "http", url=str(conf["url"]),
                            headers={str(k): str(v) for k, v in (conf.get("headers") or {}).items()},
                            allowed_tools=allowed)
    raise AgentError(f"{where}: unknown server type {kind!r} (stdio | http)", param="agent")
