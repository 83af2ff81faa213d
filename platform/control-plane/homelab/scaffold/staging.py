"""A Repo as it will be after a change, built in memory (nothing written yet), so every derived
file can be rendered from it and the whole change written all or nothing."""

from __future__ import annotations

import dataclasses

from homelab.contract.mesh import Approvals, Mesh, PortLedger
from homelab.load.repo import (APPROVALS_FILE, MESH_FILE, PORTS_FILE, Repo, Service, ordered,
                               parse_service, parse_yaml_model)


def staged(repo: Repo, files: dict[str, str], *, drop: str | None = None,
           add: Service | None = None) -> Repo:
    """`repo` with the contracts and mesh files in `files` re-parsed, `drop` removed, `add` added."""
    services = {n: s for n, s in repo.services.items() if n != drop}
    if add is not None:
        services[add.name] = add
    for rel, text in files.items():
        if rel.endswith("/SERVICE_SPEC.md") and rel.startswith("layer-"):
            svc = parse_service(text, rel)
            if svc.name != drop:
                services[svc.name] = svc
    sources = dict(repo.sources)
    values = {}
    for rel, model in ((PORTS_FILE, PortLedger), (APPROVALS_FILE, Approvals), (MESH_FILE, Mesh)):
        if rel in files:
            values[rel], sources[rel] = parse_yaml_model(files[rel], rel, model)
    return dataclasses.replace(
        repo, services=ordered(services), sources=sources,
        ports=values.get(PORTS_FILE, repo.ports), approvals=values.get(APPROVALS_FILE, repo.approvals),
        mesh=values.get(MESH_FILE, repo.mesh))
