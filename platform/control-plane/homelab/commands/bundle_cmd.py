"""`homelab bundle`: write one host's deploy bundle (units, env templates, router, install.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.deploy.bundle import bundle_files, plan_bundle
from homelab.deploy.model import INSTALL_SH
from homelab.deploy.scope import require_host
from homelab.deploy.writer import usable_out, write_bundle
from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.render.router import router_path
from homelab.rules.engine import run_checks

# Violations that make a deployment wrong or unsafe (ports, LAN exposure, routing); the rest
# (docs, checklists) do not block shipping a host.
BLOCKING = ("HL2", "HL3", "HL4")


def _current_router(root: Path, rel: str) -> str | None:
    path = root / rel
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one(rel, f"cannot read: {exc}") from None


@click.command("bundle")
@click.option("--host", "host", required=True, metavar="NAME", help="Host from mesh/mesh.yaml.")
@click.option("--out", "out", required=True, metavar="DIR",
              type=click.Path(path_type=Path), help="Directory to write the bundle into.")
@click.option("--force", is_flag=True, help="Replace a previous bundle in a non-empty --out.")
@click.option("--no-check", is_flag=True,
              help="Bundle even when `homelab check` reports port, exposure or routing violations.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, host: str, out: Path, force: bool, no_check: bool) -> None:
    """Write the deploy bundle of one host: its systemd units, env templates, the gateway's
    router.yaml (on the gateway host), healthcheck.sh/restart-all.sh for its services, a
    manifest and an idempotent install.sh.

    \b
    Example:
      homelab bundle --host inference --out /tmp/bundle-inference
      scp -r /tmp/bundle-inference inference:/tmp/ && ssh inference sudo /tmp/bundle-inference/install.sh
    """
    repo = load_repo(root)
    require_host(repo, host)
    usable_out(out, force)
    if not no_check:
        blocking = [v for v in run_checks(repo) if v.code.startswith(BLOCKING)]
        if blocking:
            for v in blocking:
                click.echo(v.as_text())
            click.echo(f"refusing to bundle: {len(blocking)} port/exposure/routing violation(s); "
                       "fix them (or pass --no-check)", err=True)
            sys.exit(1)
    plan = plan_bundle(repo, host, _current_router(root, router_path(repo)))
    files, executable = bundle_files(plan)
    write_bundle(out, files, executable, force)
    units = ", ".join(plan.units) or "no units"
    click.echo(f"bundle for host {host} in {out} ({len(files)} files; {units}); "
               f"next: sudo {out / INSTALL_SH} --dry-run")
