"""`homelab render`: rewrite every derived file from the contracts (all or nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE, orphans, render_all
from homelab.render.writer import changed, write_all
from homelab.rules.engine import render_blockers


@click.command("render")
@click.option("--check", "dry", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, dry: bool) -> None:
    """Write router.yaml's model_list, env templates, systemd units, ops scripts, doc tables, the
    topology diagram and the MCP registry from the service contracts; delete generated files no
    contract produces any more. Idempotent.

    Refuses (exit 1, nothing written) while a port, ledger or exposure rule is violated (HL2xx,
    HL3xx): those values would be written into router.yaml, the units and healthcheck.sh.

    \b
    Example:
      homelab render && git diff --stat
    """
    repo = load_repo(root)
    files = render_all(repo)
    stale = orphans(root, files)
    if dry:
        for rel in changed(root, files):
            click.echo(f"would write {rel}")
        for rel in stale:
            click.echo(f"would delete {rel}")
        sys.exit(1 if changed(root, files) or stale else 0)
    blockers = render_blockers(repo)
    if blockers:
        for v in blockers:
            click.echo(v.as_text())
        click.echo(f"refusing to render: {len(blockers)} port/ledger/exposure violation(s) would be "
                   "written into router.yaml, the units and healthcheck.sh; fix them first",
                   err=True)
        sys.exit(1)
    for rel in write_all(root, files, EXECUTABLE, remove=stale):
        click.echo(f"wrote {rel}")
    for rel in stale:
        click.echo(f"deleted {rel}")
