"""Running the mesh on this machine: up, down, start, stop, restart, status, logs, health.
Thin: options, printing, exit codes; the work is done in homelab/runtime/.

Exit codes: 0 fine, 1 something is down / failed to start, 2 unusable input.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from functools import wraps
from graphlib import CycleError
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from homelab.commands.exits import input_errors_exit_2
from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.runtime import availability, external, lifecycle, logtail, overview, probe, requestlog_cli
from homelab.runtime.hosts import local_host
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.prepare import PrepareError
from homelab.runtime.supervisor import Supervisor, SupervisorError
from homelab.runtime.supervisor_conf import Unrepresentable


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # pipes and CI logs: do not squeeze tables
    return console


def runtime_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Runtime failures are one `error:` line (exit 1); unusable values exit 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Unrepresentable as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except CycleError as exc:
            click.echo(f"error: run.after forms a cycle: {' -> '.join(exc.args[1])} "
                       "(see `homelab check`, HL406)", err=True)
            sys.exit(2)
        except (PrepareError, SupervisorError, lifecycle.UpError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (xmlrpc.client.Error, OSError) as exc:
            click.echo(f"error: talking to supervisord failed: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.command()
@click.option("--with", "with_", multiple=True, metavar="NAME",
              help="Also start an opt-in service (run.autostart: false). Repeatable.")
@click.option("--only", multiple=True, metavar="NAME",
              help="Start only these services (repeatable), in dependency order.")
@click.option("--host", default=None, help="Mesh host this machine plays (default: $HOMELAB_HOST "
                                            "or the host with a loopback/local address).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=180.0,
              show_default=True, help="Seconds to wait for each service to become healthy.")
@click.option("--no-prepare", is_flag=True,
              help="Skip `uv sync` and model builds (environments already built).")
@click.option("--skip", multiple=True, metavar="NAME",
              help="Do not wait for this external backend (contract `external`), known to be "
                   "absent. Repeatable.")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def up(root: Path, with_: tuple[str, ...], only: tuple[str, ...], host: str | None,
       timeout_s: float, no_prepare: bool, skip: tuple[str, ...]) -> None:
    """Start this host's services, each healthy before the next.

    \b
    Creates each service's uv environment, runs the contracts' run.prepare steps (ov-server
    builds jerry-tiny and converts jerry-chat once), renders
    .homelab/run/supervisord.conf from the contracts, starts supervisord, then starts the
    services in dependency order (backends, gateway, optimizer, tools), waiting for each
    health check. Idempotent: running healthy services are left alone.

    \b
    Examples:
      homelab up
      homelab up --with open-webui
      homelab up --only ov-server
      homelab up --skip ollama-mac      # an external backend that is off today: do not wait
    """
    options = lifecycle.UpOptions(host, with_, only, timeout_s, not no_prepare, skip=skip)
    sys.exit(lifecycle.up(load_repo(root), options, _console()))


@click.command()
@click.option("--purge", is_flag=True,
              help="Then delete the checkout's runtime state (.homelab/: logs, built models, run "
                   "files, UI data); secrets are kept unless you confirm or pass --purge-secrets.")
@click.option("--purge-secrets", is_flag=True,
              help="With --purge: also delete the generated secrets (.homelab/secrets.env and the "
                   "env files `up` wrote); clients holding the gateway key stop working.")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def down(root: Path, purge: bool, purge_secrets: bool) -> None:
    """Stop every service and supervisord; nothing is left running.

    \b
    Examples:
      homelab down
      homelab down --purge          # and start from a clean state next time (keeps secrets)
    """
    if purge_secrets and not purge:
        raise click.UsageError("--purge-secrets goes with --purge")
    repo = load_repo(root)
    code = lifecycle.down(repo, _console())
    if not purge:
        sys.exit(code)
    paths = RuntimePaths(repo.root)
    secret_files = [p for p in (paths.secrets, *lifecycle.up_written_env_files(repo)) if p.exists()]
    with_secrets = purge_secrets
    if secret_files and not purge_secrets and sys.stdin.isatty():
        shown = ", ".join(str(p.relative_to(repo.root)) for p in secret_files)
        with_secrets = click.confirm(f"also delete the generated secrets ({shown})? Clients that "
                                     "saved the gateway key will need the new one", default=False)
    removed = lifecycle.purge(repo, with_secrets=with_secrets)
    click.echo(f"purged {len(removed)} path(s): {', '.join(removed) or '(nothing)'}")
    if secret_files and not with_secrets:
        click.echo("kept the secrets (--purge-secrets deletes them too): "
                   + ", ".join(str(p.relative_to(repo.root)) for p in secret_files))
    sys.exit(code)


def _uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@click.command()
@click.option("--host", default=None, help="Mesh host this machine plays.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def status(root: Path, host: str | None, as_json: bool) -> None:
    """Show this host's services: state, pid, uptime, port, health, and why one is down.

    Healthy means checked now: its health endpoint answered as the contract expects AND the
    answer came from its own process group (not a leftover holding its port), with no
    undeclared LAN listener. A dead service shows its exit code or signal and a hint.
    External backends this host calls (contract `external`) are listed as EXTERNAL with their
    health; the mesh does not run them, so a down one does not change the exit code.
    Exit 0 when every autostart service is running and healthy, 1 otherwise.

    \b
    Example:
      homelab status
    """
    mesh = lifecycle.load_local_mesh(load_repo(root), host, create_secrets=False)
    sup = Supervisor(mesh.paths)
    info = sup.info() if sup.running() else {}
    outside = [s for s in external.relevant(mesh.repo, mesh.host) if s.name in mesh.external_probes]
    results = {r.service: r for r in probe.probe_all(
        [*mesh.probes.values(), *(mesh.external_probes[s.name] for s in outside)])}
    rows = [overview.service_row(mesh, name, program, info, results.get(name))
            for name, program in mesh.programs.items()]
    # External backends it calls: shown (state EXTERNAL), never a reason for exit 1.
    rows += [external.status_row(s, results.get(s.name)) for s in outside]
    # STARTING + healthy is fine: supervisord only calls it RUNNING after startsecs.
    bad = [r for r in rows if r["autostart"]
           and (r["state"] not in ("RUNNING", "STARTING") or r["healthy"] is False)]
    if as_json:
        click.echo(json.dumps({"supervisord": bool(info) or sup.running(), "services": rows},
                              indent=2))
        sys.exit(1 if bad else 0)
    table = Table(title=f"host {mesh.host}: supervisord "
                        f"{'running' if sup.running() else 'not running'}")
    for col in ("service", "state", "pid", "uptime", "port", "healthy", "problem"):
        table.add_column(col)
    for r in rows:
        healthy = {True: "yes", False: "NO", None: "-"}[r["healthy"]]
        state = r["state"] + ("" if r["autostart"] or r["external"] else " (opt-in)")
        table.add_row(r["service"], state, str(r["pid"] or "-"), _uptime(r["uptime_s"]),
                      str(r["port"] or "-"), healthy, r["problem"])
    console = _console()
    console.print(table)
    for r in rows:
        if r["hint"]:
            console.print(f"{r['service']}: {r['hint']} (`homelab logs {r['service']}`)",
                          markup=False, highlight=False)
    sys.exit(1 if bad else 0)


@click.command()
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many of the last lines to print first.")
@click.option("--request", "request_id", metavar="ID",
              help="Instead: every service's lines about request ID (the x-request-id header), in time order.")
@click.pass_obj
@input_errors_exit_2
def logs(root: Path, name: str | None, follow: bool, lines: int, request_id: str | None) -> None:
    """Print a service's log (.homelab/logs/NAME.log), or one request's path through the mesh.

    \b
    Examples:
      homelab logs ov-server -n 100
      homelab logs litellm-orch -f
      homelab logs --request req-0f3a...        # gateway, OptiLLM, ov-server lines of that request
    """
    repo = load_repo(root)
    if request_id is not None:
        sys.exit(requestlog_cli.print_trace(repo, RuntimePaths(repo.root), name, request_id))
    if name is None:
        raise InputError.one("command line", "NAME is missing (or use --request ID)")
    if name not in repo.services and name != "supervisord":
        raise InputError.one("command line", f"NAME {name}: no such service "
                                             f"(known: {', '.join(sorted(repo.services))})")
    ext = repo.services[name].spec.external if name in repo.services else None
    if ext is not None:
        click.echo(f"error: {name} is external, not run by the mesh: its log is where it runs "
                   f"({ext.managed_by}); `homelab health` shows whether it answers", err=True)
        sys.exit(1)
    paths = RuntimePaths(repo.root)
    path = paths.supervisord_log if name == "supervisord" else paths.log(name)
    if not path.exists():
        click.echo(f"error: no log yet for {name} ({path.relative_to(repo.root)}): "
                   "it has not been started by `homelab up`", err=True)
        sys.exit(1)
    with open(path, "rb") as fh:
        tail = fh.read().splitlines()[-lines:] if lines else []
        for line in tail:
            click.echo(line.decode(errors="replace"))
        if name != "supervisord":
            _why_down(paths, name)
        if not follow:
            return
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends -f quietly
            logtail.follow(path, fh)


def _why_down(paths: RuntimePaths, name: str) -> None:
    """After the log: if the service is not running, why it died (stderr, so pipes get the log)."""
    down = logtail.why_down(paths, name)
    if down is not None:
        state, died = down
        click.echo(f"--- {name} is {state}: {died.sentence()}" + (f" at {died.when}" if died.when else ""),
                   err=True)
        click.echo(f"--- hint: {died.hint}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON list for machines.")
@click.option("--models", is_flag=True,
              help="Per public model name: can the gateway serve it now (up / fallback / down)?")
@click.option("--host", default=None, help="Only the services of this mesh host.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.05, max=60), default=None,
              help="Seconds per probe (default: each contract's health.timeout_s).")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def health(root: Path, as_json: bool, models: bool, host: str | None, timeout_s: float | None) -> None:
    """Probe every health endpoint in the contracts at once.

    Exit 1 when any required probe fails (with --models: when any public model name is down).

    \b
    Examples:
      homelab health
      homelab health --json --timeout 2
      homelab health --models          # is jerry-tiny servable, and through which services?
    """
    repo = load_repo(root)
    if host and host not in {h.name for h in repo.mesh.hosts}:
        raise InputError.one("command line", f"--host {host}: no such host in mesh/mesh.yaml")
    try:
        here = local_host(repo)
    except InputError:
        here = None  # this machine plays no host: probe every service at its reach address
    mesh_env = overview.service_envs(repo)
    items = probe.targets(repo, local_host=here, host=host, env=mesh_env, timeout_s=timeout_s)
    start = time.perf_counter()
    results = probe.probe_all(items)
    elapsed = (time.perf_counter() - start) * 1000
    if models:
        _print_models(availability.model_status(repo, results), as_json, elapsed)
        return
    failed = probe.failed_required(results)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in results], indent=2))
    else:
        table = Table()
        for col in ("service", "host", "url", "ok", "status", "latency ms", "error"):
            table.add_column(col)
        for r in results:
            ok = "ok" if r.ok else ("DOWN" if r.required else "down (optional)")
            table.add_row(r.service, r.host, r.url, ok, str(r.status or "-"),
                          f"{r.latency_ms:.0f}", r.error or "")
        console = _console()
        console.print(table)
        for r in results:  # meshkit's sentence, word for word what `up` and mesh-status say
            if not r.ok:
                console.print(f"{r.service}: {r.problem}", markup=False, highlight=False,
                              soft_wrap=True)
        healthy = sum(r.ok for r in results)
        console.print(f"{healthy}/{len(results)} healthy, {len(failed)} required down; "
                      f"sweep {elapsed:.0f} ms")
    sys.exit(1 if failed else 0)


def _print_models(rows: list[availability.ModelStatus], as_json: bool, elapsed_ms: float) -> None:
    down = [r for r in rows if r.state == "down"]
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
    else:
        table = Table()
        for col in ("model", "state", "path"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.name, r.state.upper() if r.state == "down" else r.state, r.path)
        console = _console()
        console.print(table)
        console.print(f"{len(rows) - len(down)}/{len(rows)} public names servable; sweep {elapsed_ms:.0f} ms")
    sys.exit(1 if down else 0)


def _names_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--host", default=None, help="Mesh host this machine plays.")(fn)
    return click.argument("names", nargs=-1, required=True, metavar="NAME...")(fn)


@click.command()
@_names_options
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=180.0,
              show_default=True, help="Seconds to wait for each service to become healthy.")
@click.option("--no-prepare", is_flag=True, help="Skip `uv sync` and the contract's run.prepare.")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def start(root: Path, names: tuple[str, ...], host: str | None, timeout_s: float,
          no_prepare: bool) -> None:
    """Start these services (and supervisord if needed), each healthy before the next; like
    `homelab up --only NAME`. Their dependencies are not started.

    \b
    Example:
      homelab start ov-server
    """
    options = lifecycle.UpOptions(host, (), names, timeout_s, not no_prepare, "NAME")
    sys.exit(lifecycle.up(load_repo(root), options, _console()))


@click.command()
@_names_options
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def stop(root: Path, names: tuple[str, ...], host: str | None) -> None:
    """Stop these services. They stay down (supervisord does not restart a stopped service)
    until `homelab start NAME` or `homelab up`: e.g. to watch a model's fallback answer.

    \b
    Example:
      homelab stop ov-server && curl ... jerry-tiny   # answered by its fallback
    """
    sys.exit(lifecycle.stop(load_repo(root), names, host, _console()))


@click.command()
@_names_options
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=180.0,
              show_default=True, help="Seconds to wait for each service to become healthy.")
@click.option("--no-prepare", is_flag=True, help="Skip `uv sync` and the contract's run.prepare.")
@click.pass_obj
@input_errors_exit_2
@runtime_errors
def restart(root: Path, names: tuple[str, ...], host: str | None, timeout_s: float,
            no_prepare: bool) -> None:
    """Stop, then start these services (with their current contract, env and rendered files),
    waiting until each is healthy.

    \b
    Example:
      homelab restart tiny-agents     # e.g. after adding an MCP tool to the registry
    """
    repo = load_repo(root)
    lifecycle.stop(repo, names, host, _console())
    options = lifecycle.UpOptions(host, (), names, timeout_s, not no_prepare, "NAME")
    sys.exit(lifecycle.up(repo, options, _console()))


COMMANDS: list[click.Command] = [up, down, start, stop, restart, status, logs, health]
