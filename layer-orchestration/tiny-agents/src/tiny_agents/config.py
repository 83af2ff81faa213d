"""Resolve what one agent run uses, from flags, an optional agent.json and the environment.

Precedence: command-line flag > agent.json > environment > contract default. Whatever the
source, the base URL must be the gateway (see gateway.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meshkit.view import ViewError, load_view

from tiny_agents import agentjson, gateway, registry
from tiny_agents.errors import AgentError
from tiny_agents.servers import ServerConfig

if TYPE_CHECKING:
    import openai

DEFAULT_MODEL = "jerry-chat"
DEFAULT_MAX_STEPS = 8


@dataclass(frozen=True)
class Options:
    """The command-line surface shared by run/chat/serve/tools."""

    agent: str | None = None
    registry: str | None = None
    transport: str = "stdio"
    servers: list[str] | None = None
    allowed_tools: list[str] | None = None
    model: str | None = None
    gateway_url: str | None = None
    mesh_view: str | None = None  # default HOMELAB_MESH_VIEW
    max_steps: int = DEFAULT_MAX_STEPS
    stream: bool = True
    no_tools: bool = False


@dataclass(frozen=True)
class AgentConfig:
    api_base: str
    api_key: str
    model: str
    gateway: str
    servers: list[ServerConfig] = field(default_factory=list)
    allowed_tools: list[str] | None = None
    system_prompt: str | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    stream: bool = True
    key_missing: bool = False

    def client(self) -> openai.AsyncOpenAI:
        import httpx  # imported here: config errors and refusals should not pay for the SDK imports
        import openai

        # trust_env=False: no proxy from the environment; the only LLM peer is the gateway.
        return openai.AsyncOpenAI(base_url=self.api_base, api_key=self.api_key, max_retries=0,
                                  timeout=httpx.Timeout(600, connect=10),
                                  http_client=httpx.AsyncClient(trust_env=False))


def resolve(opts: Options, env: dict[str, str] | None = None) -> AgentConfig:
    env = dict(os.environ) if env is None else env
    try:
        view = load_view(opts.mesh_view or env.get("HOMELAB_MESH_VIEW") or None)
    except ViewError as exc:
        raise AgentError(f"{exc} (or pass --mesh-view)", param="mesh_view") from None
    gw = gateway.gateway_url(view, opts.gateway_url or env.get("TINYAGENTS_GATEWAY_URL") or None)

    agent = None
    agent_path = opts.agent or env.get("TINYAGENTS_AGENT")
    if agent_path:
        agent = agentjson.load(Path(agent_path).expanduser(), env)

    api_base = (agent.endpoint_url if agent and agent.endpoint_url else None) or env.get("TINYAGENTS_API_BASE") or gw
    api_base = gateway.check_api_base(api_base, gw, view)
    model = opts.model or (agent.model if agent else None) or env.get("TINYAGENTS_MODEL") or DEFAULT_MODEL
    key = (agent.api_key if agent else None) or env.get("TINYAGENTS_API_KEY") or ""

    servers: list[ServerConfig] = []
    if not opts.no_tools:
        if agent and agent.servers:
            servers.extend(agent.servers)
        registry_path = opts.registry or env.get("TINYAGENTS_REGISTRY")
        if registry_path:
            servers.extend(registry.load(Path(registry_path).expanduser(), transport=opts.transport,
                                         only=opts.servers))
        elif not (agent and agent.servers):
            servers.extend(registry.from_view(view, transport=opts.transport, only=opts.servers))
    allowed = opts.allowed_tools if opts.allowed_tools is not None else (agent.allowed_tools if agent else None)
    return AgentConfig(api_base=api_base, api_key=key or "no-key-set", model=model, gateway=gw, servers=servers,
                       allowed_tools=allowed, system_prompt=agent.system_prompt if agent else None,
                       max_steps=opts.max_steps, stream=opts.stream, key_missing=not key)
