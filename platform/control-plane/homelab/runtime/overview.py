"""What `status` and `health` report, from supervisord's and the probes' answers (no printing)."""

from __future__ import annotations

from typing import Any

from homelab.load.repo import Repo
from homelab.runtime import death, lifecycle, probe, secrets
from homelab.runtime.environment import compose
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.programs import Program


def service_row(mesh: lifecycle.LocalMesh, name: str, program: Program, info: dict[str, Any],
                result: probe.Result | None) -> dict[str, Any]:
    """One service's honest state: health is what the probe saw AND who answered it."""
    proc = info.get(name)
    live = proc is not None and proc.state in ("RUNNING", "STARTING")
    healthy = result.ok if result else None
    problem = hint = ""
    if proc is not None:
        died = death.explain(name, proc.state, proc.exitstatus, proc.spawnerr,
                             mesh.paths.supervisord_log)
        if died:
            problem, hint = died.sentence(), died.hint
    if program.port and program.bind and (live or healthy):
        wrong = lifecycle.owner_problem(program, proc.pid if live and proc else None)
        if wrong is not None:
            problem = "; ".join(p for p in (problem, wrong.problem) if p)
            healthy = False if healthy is not None else None
            if wrong.strangers:
                hint = hint or ("a process outside the supervised group holds the port (e.g. "
                                "workers whose master died): `homelab up` stops leftovers of "
                                "this mesh and restarts it")
    if result is not None and not result.ok and not problem and live:
        problem = f"health: {result.problem}"  # meshkit's sentence, as `health` prints it
    return {
        "service": name,
        "state": proc.state if proc else ("STOPPED" if info else "NOT RUNNING"),
        "pid": proc.pid if proc and proc.pid else None,
        "uptime_s": proc.uptime_s if proc else None,
        "port": program.port,
        "healthy": healthy,
        "autostart": program.autostart,
        "problem": problem,
        "hint": hint,
        "external": False,  # run by the mesh (external backends: runtime/external.status_row)
    }


def service_envs(repo: Repo) -> dict[str, dict[str, str]]:
    """Every service's environment on this checkout, from the secrets `up` made (none created)."""
    paths = RuntimePaths(repo.root)
    values = secrets.load(paths)
    return {name: compose(repo, paths, name, values) for name in repo.services}
