"""What a bundle is made of: installable entries and the host plan they belong to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from homelab.contract.mesh import Host
from homelab.load.repo import Service

UNIT_DIR = "/etc/systemd/system"
SCRIPT_DIR = "/usr/local/lib/homelab-llm"
INSTALL_SH = "install.sh"
SUMS = "SHA256SUMS"
MANIFEST_TXT = "MANIFEST.txt"
MANIFEST_JSON = "MANIFEST.json"

Role = Literal["unit", "env-template", "router", "script", "view"]
Policy = Literal["replace", "keep"]


@dataclass(frozen=True)
class Entry:
    """One installable file of the bundle."""

    path: str  # inside the bundle
    content: str
    role: Role
    dest: str  # absolute path on the host
    mode: int
    # keep: installed only when nothing is there yet (env files end up holding secrets).
    policy: Policy = "replace"
    group: str = ""  # group that must be able to read the installed file (the service user)
    source: str = ""  # what it was generated from, for the manifest

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass(frozen=True)
class SharedSecret:
    """A secret this host holds that a service on another host must hold with the same value."""

    name: str
    file: str  # where it lives here
    peer_host: str
    peer_service: str
    peer_file: str


@dataclass(frozen=True)
class Plan:
    host: Host
    mesh_name: str
    install_dir: str
    services: list[Service]  # on this host, in start order
    entries: list[Entry]
    shared_secrets: list[SharedSecret]

    @property
    def units(self) -> list[str]:
        return [s.spec.systemd.unit for s in self.services if s.spec.systemd]

    @property
    def uv_projects(self) -> list[str]:
        """Service folders (relative to install_dir) whose uv environment must exist on the host."""
        out = []
        for svc in self.services:
            if svc.spec.systemd and svc.spec.run.uv_project is not None:
                out.append(str(PurePosixPath(svc.rel_dir) / svc.spec.run.uv_project))
        return [p.removesuffix("/.") for p in out]
