"""`homelab check`: every rule; exit 0 clean, 1 violations, 2 unusable input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from homelab.cli import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.rules.engine import run_checks

RULES_DOC = "docs/foundation/rules.md"


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print violations as JSON (for machines).")
@click.option("--base", "base_ref", metavar="REF",
              help="Also compare the port ledger with git REF (catches removed or edited lines).")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, as_json: bool, base_ref: str | None) -> None:
    """Check every mesh rule and report one line per violation.

    \b
    Example:
      homelab check --base origin/main
    """
    violations = run_checks(load_repo(root), base_ref)
    if as_json:
        click.echo(json.dumps({"violations": [v.as_json() for v in violations],
                               "count": len(violations)}, indent=2))
    else:
        for v in violations:
            click.echo(v.as_text())
        if violations:
            codes = sorted({v.code for v in violations})
            click.echo(f"Found {len(violations)} violation(s) ({', '.join(codes)}); "
                       f"see {RULES_DOC}.", err=True)
    sys.exit(1 if violations else 0)
