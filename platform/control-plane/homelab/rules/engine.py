"""Run every rule over a loaded repo."""

from __future__ import annotations

from homelab.load.repo import Repo
from homelab.render.plan import render_all
from homelab.rules import (backends, checklist, env, exposure, generated, ports, topology, uv)
from homelab.rules.base import Context, Violation
from homelab.rules.history import History, resolve

# The family modules `check` runs, in order (each code's name, why and fix: catalog.RULES).
CHECKS = (checklist, ports, exposure, topology, backends, env, uv, generated)
# What `render` refuses to write from: a port or exposure that is wrong would be written into
# router.yaml, the units and healthcheck.sh.
BLOCKING_RENDER = (ports, exposure)


def context(repo: Repo, base_ref: str | None = None, *, history: bool = True,
            rendered: dict[str, str] | None = None) -> Context:
    return Context(repo, resolve(repo.root, base_ref) if history else History(),
                   render_all(repo) if rendered is None else rendered)


def run_checks(repo: Repo, base_ref: str | None = None, *, history: bool = True,
               ctx: Context | None = None) -> list[Violation]:
    ctx = ctx or context(repo, base_ref, history=history)
    return _sorted({v for family in CHECKS for v in family.check(ctx)})


def render_blockers(repo: Repo) -> list[Violation]:
    """Ledger, collision and exposure violations: `render` writes nothing while any exists."""
    ctx = context(repo, rendered={})
    return _sorted({v for family in BLOCKING_RENDER for v in family.check(ctx)})


def _sorted(found: set[Violation]) -> list[Violation]:
    return sorted(found, key=lambda v: (v.path, v.line or 0, v.code, v.message))
