"""External backends at run time: the mesh never starts them, but `up` waits (bounded) for the
ones a starting service calls, and `status` shows them next to this host's programs.

An absent external backend is a warning, never a failed `up`: the gateway serves every other
model without it, and routes to it as soon as it answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from homelab.errors import InputError, Problem
from homelab.load.repo import Repo, Service
from homelab.runtime.probe import Result, Target, probe

POLL_S = 0.5


@dataclass(frozen=True)
class Wait:
    """What waiting for one external backend found."""

    service: str
    ok: bool
    seconds: float
    url: str
    last: str  # meshkit's sentence for the last failed probe ("" when healthy)


def needed_by(repo: Repo, name: str) -> list[Service]:
    """External backends `name` calls or starts after (its `upstreams`, `run.after`)."""
    svc = repo.services.get(name)
    if svc is None:
        return []
    wanted = dict.fromkeys([*svc.spec.upstreams, *svc.spec.after])
    return [repo.services[n] for n in wanted
            if n in repo.services and repo.services[n].spec.is_external]


def relevant(repo: Repo, host: str) -> list[Service]:
    """External backends this host's status shows: declared on it, or called by a service on it."""
    here = [s for s in repo.services.values() if s.spec.host == host and not s.spec.is_external]
    called = {n for s in here for n in (*s.spec.upstreams, *s.spec.after)}
    return [s for s in repo.services.values()
            if s.spec.is_external and (s.spec.host == host or s.name in called)]


def check_skip(repo: Repo, names: tuple[str, ...]) -> None:
    """`up --skip NAME`: each NAME must be an external backend (skipping anything else means
    nothing and would hide a typo)."""
    problems = []
    for name in names:
        svc = repo.services.get(name)
        if svc is None:
            problems.append(f"--skip {name}: no such service")
        elif not svc.spec.is_external:
            problems.append(f"--skip {name}: not an external backend (the mesh runs it; "
                            "`--only` chooses what starts)")
    if problems:
        known = ", ".join(s.name for s in repo.services.values() if s.spec.is_external) or "none"
        raise InputError([Problem("command line", None, f"{p} (external backends: {known})")
                          for p in problems])


def wait_for(svc: Service, target: Target, wait_s: float | None = None) -> Wait:
    """Probe until healthy or `wait_s` (default: the contract's external.wait_s) has passed."""
    assert svc.spec.external is not None
    budget = svc.spec.external.wait_s if wait_s is None else wait_s
    start = time.monotonic()
    deadline = start + budget
    while True:
        result = probe(replace(target, timeout_s=min(target.timeout_s, max(budget, 0.5), 5.0)))
        if result.ok:
            return Wait(svc.name, True, time.monotonic() - start, target.url, "")
        if time.monotonic() + POLL_S > deadline:
            return Wait(svc.name, False, time.monotonic() - start, target.url,
                        result.problem or "not healthy")
        time.sleep(POLL_S)


def absent_message(svc: Service, wait: Wait, dependent: str) -> str:
    """One line that says what is missing, who runs it and that the mesh goes on without it."""
    assert svc.spec.external is not None
    models = ", ".join(m.name for m in svc.spec.models)
    return (f"{svc.name} (external, not run by the mesh: {svc.spec.external.managed_by}): "
            f"{wait.url}: {wait.last} (waited {wait.seconds:.0f} s); start it where it runs, or "
            f"`homelab up --skip {svc.name}` not to wait for it. "
            f"{dependent} starts without it: {models} fail until it answers, every other model "
            "is served")


def status_row(svc: Service, result: Result | None) -> dict[str, Any]:
    """A `status` row for an external backend: same keys as a program's (overview.service_row);
    no pid or uptime (not ours), healthy as probed."""
    assert svc.spec.external is not None
    healthy = result.ok if result is not None else None
    problem = f"not run by the mesh ({svc.spec.external.managed_by})"
    if result is not None and not result.ok:
        problem += f"; health: {result.problem}; start it where it runs"
    return {
        "service": svc.name,
        "state": "EXTERNAL",
        "pid": None,
        "uptime_s": None,
        "port": svc.spec.port,
        "healthy": healthy,
        "autostart": False,  # never started by the mesh; a down one does not fail `status`
        "problem": problem,
        "hint": "",  # no log here to point at: it runs elsewhere
        "external": True,
    }
