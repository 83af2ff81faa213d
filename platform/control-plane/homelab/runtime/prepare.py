"""Get services ready to start: uv environments, the contracts' prepare steps, local env files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from homelab.load.repo import Repo
from homelab.runtime import envfiles
from homelab.runtime.environment import declared_values
from homelab.runtime.programs import Program

# Relative env files `up` may create: the names .gitignore keeps out of git (they hold secrets).
WRITABLE_ENV_FILE_NAMES = ("env.local", ".env")


class PrepareError(RuntimeError):
    pass


def clean_env() -> dict[str, str]:
    """The caller's environment minus what `uv run homelab` injected for its own venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p != venv_bin) or os.defpath
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def _run(cmd: list[str], cwd: Path, on_line: Callable[[str], None],
         env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run a command, feeding each output line to `on_line` (progress), keeping the tail."""
    tail: list[str] = []
    proc = subprocess.Popen(cmd, cwd=cwd, env={**clean_env(), **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-15:]
            on_line(line)
    return proc.wait(), tail


def sync_command(project: Path) -> list[str]:
    frozen = ["--frozen"] if (project / "uv.lock").exists() else []
    return ["uv", "sync", *frozen, "--project", str(project)]


def sync(program: Program, repo: Repo, on_line: Callable[[str], None]) -> float:
    """`uv sync` the program's uv project; fast (~0.1 s) when already in sync."""
    project = program.uv_project
    if project is None:
        return 0.0
    rel = project.relative_to(repo.root) if project.is_relative_to(repo.root) else project
    if not (project / "pyproject.toml").is_file():
        raise PrepareError(f"{program.name}: {rel} has no pyproject.toml (run.uv_project); "
                           "the service is not installable yet")
    start = time.monotonic()
    code, tail = _run(sync_command(project), repo.root, on_line)
    if code != 0:
        raise PrepareError(f"{program.name}: `uv sync` failed in {rel} (exit {code}):\n"
                           + "\n".join(f"  {line}" for line in tail))
    return time.monotonic() - start


def run_prepare(program: Program, cmd: tuple[str, ...], on_line: Callable[[str], None]) -> float:
    """One of the contract's `run.prepare` commands, as the service itself would run it."""
    start = time.monotonic()
    try:
        code, tail = _run(list(cmd), program.directory, on_line, program.env)
    except OSError as exc:  # e.g. the command is not installed
        raise PrepareError(f"{program.name}: run.prepare `{' '.join(cmd)}` could not start: "
                           f"{exc.strerror or exc}") from None
    if code != 0:
        raise PrepareError(f"{program.name}: run.prepare `{' '.join(cmd)}` failed (exit {code}):\n"
                           + "\n".join(f"  {line}" for line in tail))
    return time.monotonic() - start


def env_files_to_write(repo: Repo, programs: list[Program]) -> list[tuple[Path, dict[str, str]]]:
    """Missing gitignored env files inside the repo (e.g. the gateway's config/env.local), with
    the values the program runs with, so a service's own start script finds them."""
    out = []
    for program in programs:
        spec = repo.services[program.name].spec
        if not spec.env_file or Path(spec.env_file).is_absolute():
            continue
        path = repo.root / repo.services[program.name].rel_dir / spec.env_file
        if path.name in WRITABLE_ENV_FILE_NAMES and not path.exists():
            out.append((path, declared_values(repo, program.env, program.name)))
    return out


def write_env_file(path: Path, values: dict[str, str]) -> None:
    envfiles.write_private(path, envfiles.render(
        values, "written by `homelab up` from the contract and .homelab/secrets.env; "
                "edit freely, it is never overwritten (gitignored: holds secrets)"))
