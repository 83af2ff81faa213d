"""`homelab test`: set up and run every test suite (control plane + each service's own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from homelab.cli import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.testrun import Counts, Suite, parse_pytest_summary, suites


def _ensure_apt(packages: set[str]) -> None:
    """Install missing Debian packages the suites need (CI machines start without them)."""
    missing = [p for p in sorted(packages)
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        click.echo(f"warning: cannot install {' '.join(missing)} (not root or no apt-get); "
                   "tests needing them will fail or skip", err=True)
        return
    click.echo(f"installing Debian packages: {' '.join(missing)}", err=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
                   check=False, stdout=subprocess.DEVNULL)


def _run(suite: Suite, extra: list[str]) -> tuple[int, Counts | None, float]:
    click.echo(f"\n=== {suite.name}: {' '.join(suite.command + extra)}  (in {suite.cwd})", err=True)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)  # each suite uses its own project's environment
    start = time.monotonic()
    proc = subprocess.Popen(suite.command + extra, cwd=suite.cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    try:
        rc = proc.wait(timeout=suite.timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = 124
    return rc, parse_pytest_summary("".join(lines[-50:])), time.monotonic() - start


@click.command("test", context_settings={"ignore_unknown_options": True})
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the suites and exit.")
@click.option("--pytest-args", default="", help="Extra arguments for every pytest run.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, names: tuple[str, ...], list_only: bool, pytest_args: str) -> None:
    """Set up and run the test suites: the control plane's, then each service's own (in its own
    uv environment). Ends with one 'N passed, N failed' line; exit 1 if any suite failed.

    \b
    Example:
      homelab test                  # everything, as CI does
      homelab test ov-server        # one suite
    """
    all_suites = suites(load_repo(root))
    unknown = set(names) - {s.name for s in all_suites}
    if unknown:
        raise click.BadParameter(f"unknown suite(s): {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(s.name for s in all_suites)}", param_hint="NAMES")
    chosen = [s for s in all_suites if not names or s.name in names]
    if list_only:
        for s in chosen:
            click.echo(f"{s.name}\t{s.cwd.relative_to(root) if s.cwd != root else '.'}\t{' '.join(s.command)}")
        return
    _ensure_apt({p for s in chosen for p in s.apt})
    total, failed_suites, report = Counts(), [], []
    for suite in chosen:
        rc, counts, secs = _run(suite, pytest_args.split())
        if rc != 0 or counts is None:
            failed_suites.append(suite.name)
        counts = counts or Counts(failed=1)
        total += counts
        report.append((suite.name, rc, counts, secs))
    click.echo("\n=== summary")
    for name, rc, c, secs in report:
        click.echo(f"{name:16s} exit {rc:<3d} {c.passed} passed, {c.failed} failed, "
                   f"{c.skipped} skipped  ({secs:.0f} s)")
    if failed_suites:
        click.echo(f"failed suites: {', '.join(failed_suites)}")
    click.echo(f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    sys.exit(1 if failed_suites else 0)
