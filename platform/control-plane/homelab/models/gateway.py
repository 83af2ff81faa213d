"""Make the running gateway serve the routes just rendered: restart the gateway's program and
nothing else.

LiteLLM 1.108.7 reads router.yaml at start only, and its /model/new API needs a database this mesh
does not run (field notes), so the gateway restarts (a few seconds). Every other program keeps
running: `up --only <gateway>` re-reads supervisord's config, where only the gateway's inputs
changed (router.yaml; a backend's `models` list is not one of its inputs: runtime/inputs.py).
"""

from __future__ import annotations

from rich.console import Console

from homelab.load.repo import load_repo
from homelab.runtime import lifecycle
from homelab.runtime.hosts import local_host
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.supervisor import Supervisor
from pathlib import Path


def reload(root: Path, console: Console, timeout_s: float = 300.0) -> tuple[bool, str]:
    """(served now, what happened). Not running here: nothing to do, the next `up` serves it."""
    repo = load_repo(root)
    gateway = repo.mesh.gateway.service
    svc = repo.services.get(gateway)
    if svc is None:
        return False, f"the mesh has no gateway service {gateway!r}"
    here = local_host(repo)
    if svc.spec.host != here:
        return False, (f"the gateway {gateway} runs on host {svc.spec.host!r}: run "
                       f"`homelab restart {gateway}` there (with this checkout)")
    sup = Supervisor(RuntimePaths(repo.root))
    if not sup.running() or sup.info().get(gateway) is None or \
            sup.info()[gateway].state not in lifecycle.LIVE_STATES:
        return False, f"the gateway {gateway} is not running here; `homelab up` will serve the change"
    options = lifecycle.UpOptions(None, (), (gateway,), timeout_s, False, "gateway")
    code = lifecycle.up(repo, options, console)
    if code != 0:
        return False, f"the gateway {gateway} did not come back healthy (see above)"
    return True, f"restarted {gateway} (the other services kept running)"
