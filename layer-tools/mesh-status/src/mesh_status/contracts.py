"""Read the mesh from its contracts: mesh/mesh.yaml and each layer-*/*/SERVICE_SPEC.md front
matter. A deliberately small reader (PyYAML, no control-plane import: that is another uv
project); only the fields these tools show are interpreted, so schema additions don't break it."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ContractsError(Exception):
    """Contracts missing or unreadable; the message names the file."""


@dataclass(frozen=True)
class Service:
    name: str
    spec: dict[str, Any]
    path: Path

    def get(self, key: str, default: Any = None) -> Any:
        return self.spec.get(key, default)


@dataclass(frozen=True)
class Mesh:
    root: Path
    mesh: dict[str, Any]
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def hosts(self) -> dict[str, dict[str, Any]]:
        return {h["name"]: h for h in self.mesh.get("hosts", []) if isinstance(h, dict) and "name" in h}

    def address(self, svc: Service) -> str | None:
        """Where peers reach the service: its bind address, or its host's for a wildcard bind."""
        bind = svc.get("bind")
        if bind is None:
            return None
        try:
            if ipaddress.ip_address(str(bind)).is_unspecified:
                return str(self.hosts.get(svc.get("host"), {}).get("address", "127.0.0.1"))
        except ValueError:
            pass
        return str(bind)

    def base_url(self, svc: Service) -> str | None:
        address, port = self.address(svc), svc.get("port")
        if address is None or port is None:
            return None
        if ":" in address:
            address = f"[{address}]"
        return f"http://{address}:{port}"


def find_root(env: dict[str, str] | None = None) -> Path:
    """HOMELAB_REPO, else the first parent of this package (or of the cwd) holding mesh/mesh.yaml."""
    env = os.environ if env is None else env
    if env.get("HOMELAB_REPO"):
        return Path(env["HOMELAB_REPO"]).expanduser()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "mesh" / "mesh.yaml").is_file():
                return parent
    raise ContractsError("cannot find the repository (no mesh/mesh.yaml above this package); set HOMELAB_REPO")


def front_matter(path: Path) -> dict[str, Any]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ContractsError(f"{path}: {exc.strerror or exc}") from None
    if not lines or lines[0].strip() != "---":
        raise ContractsError(f"{path}: must start with a YAML front-matter block opened by '---'")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return _yaml("\n".join(lines[1:i]), path)
    raise ContractsError(f"{path}: front-matter block is never closed by '---'")


def _yaml(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractsError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContractsError(f"{path}: expected a mapping at the top level")
    return data


def load(root: Path | None = None) -> Mesh:
    root = root or find_root()
    mesh_file = root / "mesh" / "mesh.yaml"
    try:
        mesh = _yaml(mesh_file.read_text(encoding="utf-8"), mesh_file)
    except OSError as exc:
        raise ContractsError(f"{mesh_file}: {exc.strerror or exc}") from None
    services: dict[str, Service] = {}
    for spec_path in sorted(root.glob("layer-*/*/SERVICE_SPEC.md")):
        spec = front_matter(spec_path)
        name = spec.get("name")
        if not isinstance(name, str):
            raise ContractsError(f"{spec_path}: front matter has no `name`")
        services[name] = Service(name, spec, spec_path)
    return Mesh(root, mesh, services)
