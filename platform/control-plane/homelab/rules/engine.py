"""Run every rule over a loaded repo."""

from __future__ import annotations

import subprocess

from homelab.contract.mesh import PortLedger
from homelab.errors import InputError
from homelab.load.repo import PORTS_FILE, Repo, parse_yaml_model
from homelab.render.plan import render_all
from homelab.rules import backends, checklist, env, exposure, generated, ports, topology, uv
from homelab.rules.base import Context, Violation

RULES = (checklist, ports, exposure, topology, backends, env, uv, generated)


def ledger_at(repo: Repo, ref: str) -> PortLedger:
    """The port ledger as committed at a git ref (to catch deleted or edited lines in review)."""
    try:
        out = subprocess.run(["git", "-C", str(repo.root), "show", f"{ref}:{PORTS_FILE}"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError.one(PORTS_FILE, f"--base {ref}: cannot run git: {exc}") from None
    if out.returncode != 0:
        raise InputError.one(PORTS_FILE, f"--base {ref}: {out.stderr.strip() or 'not found'}")
    ledger, _ = parse_yaml_model(out.stdout, f"{ref}:{PORTS_FILE}", PortLedger)
    return ledger


def run_checks(repo: Repo, base_ref: str | None = None) -> list[Violation]:
    ctx = Context(repo, ledger_at(repo, base_ref) if base_ref else None, base_ref, render_all(repo))
    found = {v for rule in RULES for v in rule.check(ctx)}
    return sorted(found, key=lambda v: (v.path, v.line or 0, v.code, v.message))
