"""One host's view of the mesh: the same Repo, narrowed to the services placed on that host."""

from __future__ import annotations

import dataclasses

from homelab.errors import InputError
from homelab.load.repo import MESH_FILE, Repo, Service


def require_host(repo: Repo, host: str) -> None:
    names = [h.name for h in repo.mesh.hosts]
    if host not in names:
        line = repo.sources[MESH_FILE].line("hosts") if MESH_FILE in repo.sources else None
        raise InputError.one(MESH_FILE, f"unknown host {host!r}; the mesh declares: "
                                        f"{', '.join(names)}", line)


def services_on(repo: Repo, host: str) -> list[Service]:
    return sorted((s for s in repo.services.values() if s.spec.host == host), key=lambda s: s.name)


def host_view(repo: Repo, host: str) -> Repo:
    """The repo as if the mesh were only this host: its services, and only it in `hosts`.

    The lead's renderers take a whole Repo; feeding them this view makes them render one host's
    share (env templates listing only its variables, a healthcheck probing only its services, a
    restart-all.sh whose only host is this one) without a host parameter of their own.
    """
    require_host(repo, host)
    mesh = repo.mesh.model_copy(update={"hosts": [h for h in repo.mesh.hosts if h.name == host]})
    services = {s.name: s for s in services_on(repo, host)}
    return dataclasses.replace(repo, mesh=mesh, services=services)
