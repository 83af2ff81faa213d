"""`homelab test`: set up and run every test suite (control plane + each service's own).

Green means: every suite exited 0 and ran tests, none hit its wall clock, and every skip is on
the allow-list (platform/testing/allowed-skips.yaml) or accepted with --allow-skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.testrun import process
from homelab.testrun.outcome import Outcome, summary
from homelab.testrun.report import Report, parse_junit, parse_pytest_summary
from homelab.testrun.skips import compile_patterns, judge, load_allowed
from homelab.testrun.suites import Suite, suites

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "testrun" / "pytest_plugin"


def _installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                         text=True)
    return out.returncode == 0 and out.stdout.strip() == "install ok installed"


def _ensure_apt(packages: set[str]) -> None:
    """Install missing Debian packages the suites need (CI machines start without them)."""
    if not packages:
        return
    if not shutil.which("dpkg-query"):
        click.echo("warning: not a Debian system: cannot check the suites' Debian packages "
                   f"({' '.join(sorted(packages))})", err=True)
        return
    missing = [p for p in sorted(packages) if not _installed(p)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        click.echo(f"warning: cannot install {' '.join(missing)} (not root, or no apt-get): "
                   f"tests needing them will skip and fail the run; as root: "
                   f"apt-get install {' '.join(missing)}", err=True)
        return
    click.echo(f"installing Debian packages: {' '.join(missing)}", err=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   env=env, check=False, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    still = [p for p in missing if not _installed(p)]
    if still:
        click.echo(f"error: apt-get could not install {' '.join(still)}: tests needing them "
                   "will skip and fail the run", err=True)


def _suite_env() -> dict[str, str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)  # each suite uses its own project's environment
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    return env


def _echo(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def _run_suite(suite: Suite, extra: list[str], reports: Path) -> tuple[process.RunResult,
                                                                       Report | None]:
    junit = reports / f"{suite.name}.xml"
    progress = reports / f"{suite.name}.progress.json"
    cmd = suite.command + extra
    if suite.is_pytest:
        cmd += ["-p", "homelab_progress", f"--junitxml={junit}"]
    click.echo(f"\n=== {suite.name}: {' '.join(suite.command + extra)}  (in {suite.cwd}, "
               f"wall clock {suite.timeout_s} s)", err=True)
    sys.stderr.flush()
    env = {**_suite_env(), "HOMELAB_TEST_PROGRESS": str(progress)}
    result = process.run(cmd, cwd=suite.cwd, env=env, timeout_s=suite.timeout_s, echo=_echo,
                         progress_file=progress)
    if junit.is_file():
        try:
            report = parse_junit(junit.read_text(encoding="utf-8"), suite.cwd)
        except Exception as exc:  # a truncated report (killed while writing) counts as none
            click.echo(f"warning: {suite.name}: unreadable junit report: {exc}", err=True)
        else:
            if result.timed_out:
                where = result.progress
                report = report.interrupted_in(where.test if where.phase == "running" and where.test
                                               else f"(the suite itself, {where.where()})")
            return result, report
    counts = None if suite.is_pytest else parse_pytest_summary(result.tail)
    return result, Report(counts) if counts else None


@click.command("test", context_settings={"ignore_unknown_options": True})
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the suites and exit.")
@click.option("--pytest-args", default="", help="Extra arguments for every pytest run.")
@click.option("--allow-skip", "allow_skip", multiple=True, metavar="REGEX",
              help="Accept skips whose reason matches REGEX for this run (repeatable); "
                   "e.g. '^needs root' on a machine where you are not root.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, names: tuple[str, ...], list_only: bool, pytest_args: str,
            allow_skip: tuple[str, ...]) -> None:
    """Set up and run the test suites: the control plane's, then each service's own (in its own
    uv environment), each under its wall clock. Fails on a failed or erroring test, a suite that
    ran no test or hit its wall clock, and any skip not on platform/testing/allowed-skips.yaml.
    Ends with each suite's counts and time, every skip with its reason, and the total line
    'N passed, M failed, K skipped'; exit 1 unless everything is green.

    \b
    Example:
      homelab test                  # everything, as CI does
      homelab test ov-server        # one suite
      homelab test --allow-skip '^needs root'   # not root: accept the root-only tests' skips
    """
    all_suites = suites(load_repo(root))
    unknown = set(names) - {s.name for s in all_suites}
    if unknown:
        raise click.BadParameter(f"unknown suite(s): {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(s.name for s in all_suites)}",
                                 param_hint="NAMES")
    chosen = [s for s in all_suites if not names or s.name in names]
    if list_only:
        for s in chosen:
            where = s.cwd.relative_to(root) if s.cwd != root else "."
            click.echo(f"{s.name}\t{where}\t{' '.join(s.command)}")
        return
    allowed, patterns = load_allowed(root), compile_patterns(allow_skip)
    is_root = os.geteuid() == 0
    if not is_root:
        click.echo("note: not root: tests that need network namespaces skip, and `homelab test` "
                   "fails on them unless accepted with --allow-skip '^needs root' (CI runs as "
                   "root)", err=True)
    _ensure_apt({p for s in chosen for p in s.apt})
    start = time.monotonic()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="homelab-test-") as tmp:
        for suite in chosen:
            result, report = _run_suite(suite, pytest_args.split(), Path(tmp))
            verdicts = tuple(judge(suite.name, report.skips, allowed, patterns)) if report else ()
            outcomes.append(Outcome(suite.name, result, report, verdicts))
    for line in summary(outcomes, time.monotonic() - start, is_root=is_root):
        click.echo(line)
    sys.exit(0 if all(o.ok for o in outcomes) else 1)
