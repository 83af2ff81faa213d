"""Health probe targets for this checkout's mesh. The probe itself is meshkit.probe (the one
mesh-status uses too), so `up`, `health`, `status` and mesh-status word a failure the same way;
the targets come from the mesh view (what services read), rendered in memory from the contracts.
"""

from __future__ import annotations

from meshkit.probe import Result, Target, failed_required, models_down, probe, probe_all
from meshkit.view import parse

from homelab.load.repo import Repo
from homelab.render.view import VIEW, view


def targets(repo: Repo, *, local_host: str | None = None, host: str | None = None,
            env: dict[str, dict[str, str]] | None = None,
            timeout_s: float | None = None) -> list[Target]:
    """One target per service with a health block (optionally only those on `host`).

    Services on `local_host` are probed on loopback when bound to a wildcard address. `env` maps
    a service name to its environment, used for `health.auth_env` bearer tokens.
    """
    mesh = parse(view(repo), repo.root / VIEW)
    return [svc.health.target(svc, local=svc.host == local_host, env=(env or {}).get(svc.name),
                              timeout_s=timeout_s)
            for svc in sorted(mesh.services.values(), key=lambda s: s.name)
            if svc.health is not None and not (host and svc.host != host)]


__all__ = ["Result", "Target", "failed_required", "models_down", "probe", "probe_all", "targets"]
