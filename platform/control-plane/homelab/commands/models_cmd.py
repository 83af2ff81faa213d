"""`homelab models list|add|rm`: thin; the work is in homelab/models/."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn,
                           TransferSpeedColumn)

from homelab.commands.exits import input_errors_exit_2
from homelab.load.repo import load_repo
from homelab.models import gateway, lifecycle
from homelab.models.lock import models_lock


class RichReporter:
    """Download progress on stderr (rich): bytes, speed; notes (resumes, retries) as lines."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(self, what: str, total: int | None, done: int) -> None:
        if self.progress is None:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), console=self.console, transient=False)
            self.progress.start()
        if self.task is None:
            self.task = self.progress.add_task(what, total=total, completed=done)
        else:
            self.progress.update(self.task, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, n)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@click.group("models")
def group() -> None:
    """The models backends serve: list them, add one from a file, URL or Hugging Face, remove one.

    \b
    Examples:
      homelab models list
      homelab models add jerry-smol --from ./SmolLM2-135M-Instruct.Q4_1.gguf
      homelab models add jerry-qwen --from hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-fp16.gguf \\
          --sha256 <64 hex digits> --backend ov-server
      homelab models rm jerry-smol
    """


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, in a list.")
@click.pass_obj
@input_errors_exit_2
def list_(root: Path, as_json: bool) -> None:
    """Every model of every backend: name, backend, file, size on disk, and what the running
    engine says (ok, loading, failed: why; `not running` when it does not answer)."""
    rows = lifecycle.rows(load_repo(root))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    width = [max([len(h)] + [len(str(v)) for v in col]) for h, col in (
        ("NAME", [r.name for r in rows]), ("BACKEND", [r.backend for r in rows]))]
    click.echo(f"{'NAME':<{width[0]}}  {'BACKEND':<{width[1]}}  {'SIZE':>9}  STATE  FILE")
    for r in rows:
        click.echo(f"{r.name:<{width[0]}}  {r.backend:<{width[1]}}  {_size(r.size):>9}  {r.state}  {r.file}")


@group.command("add")
@click.argument("name")
@click.option("--from", "source", required=True, metavar="PATH|URL|hf:REPO/FILE",
              help="A local file, an http(s) URL, or hf:OWNER/REPO/FILE[@REVISION] (HF_ENDPOINT honoured).")
@click.option("--sha256", default=None, metavar="HEX", help="Expected SHA-256 of the file: refused on mismatch.")
@click.option("--backend", default=None, metavar="SERVICE",
              help="The backend to serve it (default: the only backend with a known engine that a plain `up` starts).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the gateway and the engine to serve it.")
@click.pass_obj
@input_errors_exit_2
def add(root: Path, name: str, source: str, sha256: str | None, backend: str | None,
        timeout_s: float) -> None:
    """Add model NAME: land the file in the backend's model folder (resumed if cut off, size and
    checksum verified, atomic), check that the engine loads it, register it with the engine (hot
    reload), add it to the backend's contract, render, and restart only the gateway.
    Writes nothing on error."""
    console = Console(stderr=True)
    t0 = time.monotonic()
    with models_lock(root, lambda line: click.echo(line, err=True)):
        added = lifecycle.add(load_repo(root), name, source, sha256=sha256, backend=backend, cwd=Path.cwd(),
                              reporter=RichReporter(console), echo=click.echo)
        click.echo(f"registered {name} with {added.backend} (engine load check {added.check_s:.1f} s); "
                   f"updated {len(added.written)} file(s)")
        served, what = gateway.reload(root, Console(), timeout_s)
    click.echo(what)
    if served:
        state = lifecycle.wait_served(load_repo(root), added.backend, name, timeout_s)
        click.echo(f"{added.backend}: {name}: {state}")
        if state != "ok":
            sys.exit(1)
        click.echo(f"{name} is served through the gateway ({time.monotonic() - t0:.1f} s)")


@group.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when NAME is another model's fallback (removed from it too).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the gateway to come back.")
@click.pass_obj
@input_errors_exit_2
def rm(root: Path, name: str, force: bool, timeout_s: float) -> None:
    """Remove model NAME: from the engine's configuration (its landed file deleted), from the
    contract (and with --force from other models' fallbacks), render, restart only the gateway.
    Refused, with nothing changed, while it is another model's fallback (unless --force), an
    optimizer's alias target, a client's default, or its backend's only model."""
    with models_lock(root, lambda line: click.echo(line, err=True)):
        removed = lifecycle.remove(load_repo(root), name, force=force)
        click.echo(f"removed {name} from {removed.backend}"
                   + (f"; deleted {removed.deleted_file}" if removed.deleted_file else "")
                   + f"; updated {len(removed.written)} file(s)")
        served, what = gateway.reload(root, Console(), timeout_s)
    click.echo(what)
    if not served and "not running" not in what:
        sys.exit(1)


command = group
