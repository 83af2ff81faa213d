"""`homelab check`: every rule; exit 0 clean, 1 violations, 2 unusable input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.rules import live as live_rules
from homelab.rules.engine import context, run_checks

RULES_DOC = "docs/foundation/rules.md"


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print violations as JSON (for machines).")
@click.option("--base", "base_ref", metavar="REF",
              help="Compare the port ledger and approvals with the merge base of REF "
                   "(default: $HOMELAB_CHECK_BASE, else the branch this one came from; see rules.md).")
@click.option("--no-base", is_flag=True, help="Do not compare with git history (HL205, HL207, HL305).")
@click.option("--live", is_flag=True,
              help="Also start every MCP tool's stdio command and compare its tools with the "
                   "contract (HL504; takes seconds per tool).")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, as_json: bool, base_ref: str | None, no_base: bool, live: bool) -> None:
    """Check every mesh rule and report one line per violation, with its fix.

    \b
    Examples:
      homelab check
      homelab check --base origin/main --json
      homelab check --live            # also run each MCP tool's stdio server
    """
    if base_ref and no_base:
        raise click.UsageError("--base and --no-base exclude each other")
    repo = load_repo(root)
    ctx = context(repo, base_ref, history=not no_base)
    violations = run_checks(repo, ctx=ctx)
    if live:
        violations += live_rules.check(repo)
    if as_json:
        click.echo(json.dumps({"violations": [v.as_json() for v in violations],
                               "count": len(violations),
                               "bases": [b.label for b in ctx.history.bases]}, indent=2))
    else:
        for v in violations:
            click.echo(v.as_text())
        if violations:
            codes = sorted({v.code for v in violations})
            click.echo(f"Found {len(violations)} violation(s) ({', '.join(codes)}); "
                       f"see {RULES_DOC}.", err=True)
    if ctx.history.note:
        click.echo(f"note: {ctx.history.note}", err=True)
    sys.exit(1 if violations else 0)
