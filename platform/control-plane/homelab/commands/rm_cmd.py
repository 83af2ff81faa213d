"""`homelab rm NAME`: remove a service from the mesh (its ports are retired, never freed)."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE
from homelab.render.writer import changed, write_all
from homelab.scaffold.remove import plan_rm


@click.command("rm")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, name: str, yes: bool) -> None:
    """Remove service NAME: its folder, its derived files (unit, env template, registry entry,
    routes), fallbacks and aliases of its models, and its place in other contracts' upstreams and
    run.after. Its ports are retired in the ledger, never freed. Writes nothing on error.

    \b
    Example:
      homelab rm jerry-box --yes && uv run homelab check
    """
    repo = load_repo(root)
    removal = plan_rm(repo, name, dt.date.today())
    external = repo.services[name].spec.external
    updates = changed(root, removal.write)
    click.echo(f"removing {removal.folder}/ and {len(removal.delete)} derived file(s); "
               f"updating {len(updates)} file(s); retiring port(s) "
               f"{', '.join(map(str, removal.retired)) or '(none)'}")
    for rel in removal.delete:
        click.echo(f"  delete {rel}")
    for rel in updates:
        click.echo(f"  update {rel}")
    if not yes:
        if not sys.stdin.isatty():
            click.echo("error: confirm with --yes (no terminal to ask on)", err=True)
            sys.exit(2)
        click.confirm("go ahead?", abort=True)
    write_all(root, removal.write, EXECUTABLE, remove=removal.delete)
    shutil.rmtree(root / removal.folder)
    if external is not None:  # the mesh never ran it: nothing of ours to stop
        click.echo(f"removed {name}; the mesh no longer routes to it (it keeps running where it "
                   f"runs: {external.managed_by})")
    else:
        click.echo(f"removed {name}; if it runs, `uv run homelab up` stops it (its program is gone)")
