"""`homelab port move NAME`: retire a service's port and allocate a new one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE
from homelab.render.writer import write_all
from homelab.scaffold.move import plan_move


@click.group("port")
def command() -> None:
    """Ports are immutable: the ledger (mesh/ports.yaml) only grows."""


@command.command("move")
@click.argument("name")
@click.option("--port", type=int, help="The new port (default: the next free one of the kind's block).")
@click.pass_obj
@input_errors_exit_2
def move(root: Path, name: str, port: int | None) -> None:
    """Give service NAME a new port: retire the old one in the ledger (it stays reserved), append
    the new one, update the contract (and, for the gateway, mesh.yaml's public URL and the
    contracts that default to it) and re-render. Writes nothing on error.

    \b
    Example:
      homelab port move ov-server && uv run homelab check
    """
    plan = plan_move(load_repo(root), name, dt.date.today(), port)
    written = write_all(root, plan.write, EXECUTABLE)
    click.echo(f"{name}: port {plan.old} retired, now {plan.new} ({len(written)} files written)")
    for rel in plan.mentions:
        click.echo(f"warning: {rel} still names the old port {plan.old}; update it by hand", err=True)
    click.echo("next: uv run homelab check, then `uv run homelab up` restarts it on the new port")
