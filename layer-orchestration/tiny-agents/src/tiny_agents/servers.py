"""How to reach one MCP server: stdio (spawn a command) or streamable HTTP (a URL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    name: str
    transport: str  # "stdio" | "http"
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Tool names this server may offer (agent.json per-server `allowed_tools`); None = all.
    allowed_tools: frozenset[str] | None = None

    def describe(self) -> str:
        if self.transport == "stdio":
            return f"{self.name} (stdio: {' '.join([self.command or '', *self.args])})"
        return f"{self.name} (http: {self.url})"
