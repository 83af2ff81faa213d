"""`homelab render`: rewrite every derived file from the contracts (all or nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from homelab.cli import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE, render_all
from homelab.render.writer import changed, write_all


@click.command("render")
@click.option("--check", "dry", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, dry: bool) -> None:
    """Write router.yaml's model_list, env templates, systemd units, ops scripts, doc tables and
    the MCP registry from the service contracts. Idempotent.

    \b
    Example:
      homelab render && git diff --stat
    """
    files = render_all(load_repo(root))
    if dry:
        stale = changed(root, files)
        for rel in stale:
            click.echo(f"would write {rel}")
        sys.exit(1 if stale else 0)
    for rel in write_all(root, files, EXECUTABLE):
        click.echo(f"wrote {rel}")
