"""A private copy of a mesh checkout on free ports: for fault tests and benchmarks that must run
the real services without touching a developer's mesh on the contract ports.

Copies contracts, mesh files and service sources (no .venv, caches, runtime state or local
secrets), gives every service a free loopback port and rewrites the port everywhere it appears:
SERVICE_SPEC.md, mesh/ports.yaml, mesh/mesh.yaml, layer-level files (the MCP registry) and the
services' config/ files (e.g. the gateway's router.yaml). Machine-wide env files are replaced by
an empty folder inside the copy. The copy's uv environments are created by `homelab up` from the
uv cache (hard links: seconds, not a download).
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

from homelab.load.repo import load_repo

_SKIP = shutil.ignore_patterns(".venv", "__pycache__", ".pytest_cache", ".hypothesis",
                               ".ruff_cache", ".homelab", "env.local", "*.env.local", ".git")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rewrite(path: Path, patterns: list[tuple[re.Pattern[str], str]]) -> None:
    text = path.read_text(encoding="utf-8")
    new = text
    for pattern, repl in patterns:
        new = pattern.sub(repl, new)
    if new != text:
        path.write_text(new, encoding="utf-8")


def copy_mesh(src: Path, dst: Path, services: list[str] | None = None) -> dict[str, int]:
    """Copy `src` to `dst` (only `services` when given); returns service -> new port."""
    repo = load_repo(src)
    keep = set(services or repo.services)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "mesh", dst / "mesh", ignore=_SKIP)
    shutil.copytree(src / "platform/meshkit", dst / "platform/meshkit", ignore=_SKIP)  # services' path dependency
    for svc in repo.services.values():
        if svc.name in keep:
            shutil.copytree(src / svc.rel_dir, dst / svc.rel_dir, ignore=_SKIP, symlinks=True)
    for layer in src.glob("layer-*"):  # layer-level files, e.g. the MCP registry
        for path in layer.iterdir():
            if path.is_file():
                (dst / layer.name).mkdir(exist_ok=True)
                shutil.copy2(path, dst / layer.name / path.name)
    mapping = {svc.spec.port: free_port() for svc in repo.services.values() if svc.spec.port}
    new_ports = {svc.name: mapping[svc.spec.port] for svc in repo.services.values()
                 if svc.spec.port}
    url_patterns = [(re.compile(rf"(127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0):{old}\b"),
                     rf"\g<1>:{new}") for old, new in mapping.items()]
    # Machine-wide env files (/etc/homelab-llm/*.env) belong to the real mesh: the copy reads its
    # own, empty, folder instead, so a developer's settings cannot point it at the real ports.
    etc = [(re.compile(r"/etc/homelab-llm/"), f"{dst / '.homelab-etc'}/")]
    for path in dst.glob("layer-*/*/SERVICE_SPEC.md"):
        _rewrite(path, etc + url_patterns + [(re.compile(rf"(?m)^port: {old}\s*$"), f"port: {new}")
                                       for old, new in mapping.items()])
    _rewrite(dst / "mesh/ports.yaml", [(re.compile(rf"\bport: {old}\b"), f"port: {new}")
                                       for old, new in mapping.items()])
    _rewrite(dst / "mesh/mesh.yaml", url_patterns)
    for path in [*dst.glob("layer-*/*/config/*"), *dst.glob("layer-*/*.*")]:
        if path.is_file() and path.suffix in (".yaml", ".yml", ".json", ".example", ".env",
                                              ".toml"):
            _rewrite(path, url_patterns)
    load_repo(dst)  # the copy must still be a valid mesh
    return {name: port for name, port in new_ports.items() if name in keep}
