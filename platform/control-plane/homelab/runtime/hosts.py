"""Which mesh host is this machine, and which services run here."""

from __future__ import annotations

import ipaddress
import os
import socket

from homelab.errors import InputError
from homelab.load.repo import MESH_FILE, Repo, Service

HOST_ENV = "HOMELAB_HOST"


def _is_assigned_here(address: str) -> bool:
    """True when this machine owns `address` (binding an ephemeral port on it works)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
        return True
    except OSError:
        return False


def local_host(repo: Repo, explicit: str | None = None) -> str:
    """The host name this machine plays: --host, else $HOMELAB_HOST, else the host whose address
    is loopback, else the first host whose address is assigned to this machine."""
    names = [h.name for h in repo.mesh.hosts]
    chosen = explicit or os.environ.get(HOST_ENV)
    if chosen:
        if chosen not in names:
            raise InputError.one(MESH_FILE, f"unknown host {chosen!r} (hosts: {', '.join(names)})")
        return chosen
    for host in repo.mesh.hosts:
        if ipaddress.ip_address(host.address).is_loopback:
            return host.name
    for host in repo.mesh.hosts:
        if _is_assigned_here(host.address):
            return host.name
    raise InputError.one(MESH_FILE, "no host in mesh.yaml has an address on this machine; "
                                    f"set ${HOST_ENV} or pass --host")


def services_on(repo: Repo, host: str) -> list[Service]:
    """The services the mesh runs on `host` (an external backend there is run by someone else)."""
    return [s for s in repo.services.values() if s.spec.host == host and not s.spec.is_external]


def externals(repo: Repo) -> list[Service]:
    """Backends the mesh routes to but does not run (contract `external`), wherever they are."""
    return [s for s in repo.services.values() if s.spec.is_external]
