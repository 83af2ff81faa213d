"""`homelab top`: a live view of every service and model, read from their /metrics and health.

Thin: options, the refresh loop, exit codes. Figures come from homelab.observe (pure).
Exit codes: 0 stopped by Ctrl-C (or --once with every required service up), 1 the mesh is or
went down (or --once with a required service down), 2 unusable input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from homelab.commands.exits import input_errors_exit_2
from homelab.errors import InputError
from homelab.load.repo import Repo, load_repo
from homelab.observe import collect, rows as top_rows, table
from homelab.runtime import probe


def _envs(repo: Repo) -> dict[str, dict[str, str]]:
    """Each service's environment as `up` composes it: where the metrics and health keys are."""
    from homelab.runtime import secrets
    from homelab.runtime.environment import compose
    from homelab.runtime.paths import RuntimePaths

    paths = RuntimePaths(repo.root)
    values = secrets.load(paths)
    return {name: compose(repo, paths, name, values) for name in repo.services}


def _targets(repo: Repo, host: str | None) -> tuple[list[probe.Target], list[collect.MetricsTarget]]:
    from homelab.runtime.hosts import local_host

    if host and host not in {h.name for h in repo.mesh.hosts}:
        raise InputError.one("command line", f"--host {host}: no such host in mesh/mesh.yaml")
    try:
        here: str | None = local_host(repo)
    except InputError:
        here = None  # this machine plays no host: reach every service at its address
    env = _envs(repo)
    return (probe.targets(repo, local_host=here, host=host, env=env),
            collect.metrics_targets(repo, local_host=here, env=env, host=host))


@click.command()
@click.option("--once", is_flag=True, help="One reading (two sweeps INTERVAL apart), then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: JSON for scripts.")
@click.option("--interval", type=click.FloatRange(min=0.2, max=60), default=1.0, show_default=True,
              help="Seconds between refreshes (and the window rates are computed over).")
@click.option("--host", default=None, help="Only the services of this mesh host.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, once: bool, as_json: bool, interval: float, host: str | None) -> None:
    """Live view of every service and model: health, requests/s, tokens/s, p50/p99 latency,
    queue (waiting sequences), KV cache usage. Reads each service's /metrics and health
    endpoint directly (no Prometheus needed). Ctrl-C to quit.

    \b
    p50/p99 are over the last refresh; marked * they are since the service started (no request
    in the last refresh).

    \b
    Examples:
      homelab top
      homelab top --once --json | jq '.services[] | {service, state}'
    """
    if as_json and not once:
        raise click.UsageError("--json goes with --once")
    repo = load_repo(root)
    health, metrics = _targets(repo, host)
    if not health and not metrics:
        raise InputError.one("command line", "no service declares a health check or metrics"
                             + (f" on host {host}" if host else ""))
    if once:
        sys.exit(_once(health, metrics, interval, as_json))
    sys.exit(_live(health, metrics, interval, repo.mesh.name))


def _once(health: list[probe.Target], metrics: list[collect.MetricsTarget], interval: float,
          as_json: bool) -> int:
    first = collect.sweep(health, metrics)
    second = first
    if not top_rows.mesh_down(top_rows.rows(first)):  # a second sweep only when there is a mesh to read
        time.sleep(interval)
        second = collect.sweep(health, metrics)
    rows = top_rows.rows(second, None if second is first else first)
    window = _window(first, second)
    if as_json:
        click.echo(json.dumps(top_rows.as_json(rows, window), indent=2))
    else:
        _console().print(table.render(rows, "homelab top (one reading)"))
    if top_rows.mesh_down(rows):
        click.echo("the mesh is not running: no service answers (start it with `homelab up`)",
                   err=True)
        return 1
    return 1 if any(r.healthy is False and r.required for r in rows) else 0


def _window(first: collect.Sweep, second: collect.Sweep) -> float | None:
    if first is second:
        return None
    pairs = [(first.scrapes[s].at, second.scrapes[s].at) for s in second.scrapes
             if s in first.scrapes]
    return max(b - a for a, b in pairs) if pairs else None


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # pipes and logs: do not squeeze the table
    return console


def _live(health: list[probe.Target], metrics: list[collect.MetricsTarget], interval: float,
          mesh_name: str) -> int:
    console = _console()
    try:
        previous = collect.sweep(health, metrics)
        if top_rows.mesh_down(top_rows.rows(previous)):
            console.print("the mesh is not running: no service answers (start it with "
                          "`homelab up`)")
            return 1
        with Live(table.render(top_rows.rows(previous), f"{mesh_name}: first reading"),
                  console=console, auto_refresh=False) as live:
            while True:
                # Refresh on a fixed beat: the sweep's own time is taken out of the wait.
                time.sleep(max(0.0, interval - (time.monotonic() - _started(previous))))
                current = collect.sweep(health, metrics)
                rows = top_rows.rows(current, previous)
                if top_rows.mesh_down(rows):
                    live.stop()
                    console.print(f"the mesh went down at {time.strftime('%H:%M:%S')}: no "
                                  "service answers any more; stopped watching")
                    return 1
                live.update(table.render(rows, f"{mesh_name} at {time.strftime('%H:%M:%S')} "
                                               f"(every {interval:g} s; Ctrl-C to quit)"),
                            refresh=True)
                previous = current
    except KeyboardInterrupt:
        return 0


def _started(sweep: collect.Sweep) -> float:
    """When a sweep's answers arrived (its earliest scrape), or now when it scraped nothing."""
    return min((s.at for s in sweep.scrapes.values()), default=time.monotonic())
