"""What the agent needs from the mesh contracts: the gateway URL and the addresses it must
never call directly (backends, optimizers). Small PyYAML reader; no control-plane import."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tiny_agents.errors import AgentError

# Services a client must never call directly: it goes through the gateway.
NOT_FOR_CLIENTS = {"backend", "optimizer"}


@dataclass(frozen=True)
class MeshInfo:
    root: Path | None
    gateway_url: str | None
    # normalised base URL -> "backend ov-server" etc.
    forbidden: dict[str, str] = field(default_factory=dict)


def find_root(env: dict[str, str] | None = None) -> Path | None:
    """HOMELAB_REPO, else the first parent of this package (or the cwd) holding mesh/mesh.yaml."""
    env = os.environ if env is None else env
    if env.get("HOMELAB_REPO"):
        return Path(env["HOMELAB_REPO"]).expanduser()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "mesh" / "mesh.yaml").is_file():
                return parent
    return None


def _yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentError(f"{path}: {exc.strerror or exc}") from None
    if path.suffix == ".md":
        lines = text.splitlines()
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if not lines or lines[0].strip() != "---" or end is None:
            raise AgentError(f"{path}: no YAML front matter")
        text = "\n".join(lines[1:end])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AgentError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise AgentError(f"{path}: expected a mapping")
    return data


def _addresses(spec: dict[str, Any], hosts: dict[str, str]) -> list[str]:
    bind, port = spec.get("bind"), spec.get("port")
    if bind is None or port is None:
        return []
    found = {str(bind)}
    try:
        if ipaddress.ip_address(str(bind)).is_unspecified:
            found = {hosts.get(spec.get("host", ""), "127.0.0.1"), "127.0.0.1", "localhost"}
    except ValueError:
        pass
    if str(bind) in ("127.0.0.1", "::1"):
        found.add("localhost")
    return [f"{a}:{port}" for a in found]


def load(root: Path | None) -> MeshInfo:
    if root is None:
        return MeshInfo(None, None)
    mesh = _yaml(root / "mesh" / "mesh.yaml")
    gateway = (mesh.get("gateway") or {}).get("public_base_url")
    hosts = {h.get("name"): h.get("address") for h in mesh.get("hosts", []) if isinstance(h, dict)}
    forbidden: dict[str, str] = {}
    for spec_path in sorted(root.glob("layer-*/*/SERVICE_SPEC.md")):
        spec = _yaml(spec_path)
        if spec.get("kind") in NOT_FOR_CLIENTS:
            for hostport in _addresses(spec, hosts):
                forbidden[hostport] = f"{spec.get('kind')} {spec.get('name')}"
    return MeshInfo(root, gateway, forbidden)
