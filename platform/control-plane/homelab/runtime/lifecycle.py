"""`up` and `down`: bring this host's services up in dependency order, healthy one by one, and
take everything down again leaving no process behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from homelab.ordering import start_order
from homelab.load.repo import Repo
from homelab.render.view import render_view
from homelab.runtime import death, external, inputs, ownership, prepare, procfs, secrets
from homelab.runtime.environment import MARKER, compose
from homelab.runtime.envfiles import write_private
from homelab.runtime.hosts import externals, local_host, services_on
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.programs import Program, program_for, select
from homelab.runtime.probe import Target, probe, targets
from homelab.runtime.supervisor import ProcInfo, Supervisor
from homelab.runtime.supervisor_conf import render

LIVE_STATES = ("RUNNING", "STARTING", "BACKOFF")


@dataclass
class UpOptions:
    host: str | None = None
    with_: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    timeout_s: float = 180.0
    prepare: bool = True
    only_label: str = "--only"  # how errors name `only` (start/restart: the NAME argument)
    skip: tuple[str, ...] = ()  # external backends `up` does not wait for (--skip)


@dataclass
class LocalMesh:
    """This host's view of the repo: every local program (all go into supervisord.conf)."""

    repo: Repo
    paths: RuntimePaths
    host: str
    programs: dict[str, Program] = field(default_factory=dict)
    probes: dict[str, Target] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # runtime/inputs.py
    # External backends (wherever declared): probed, waited for, never started (runtime/external.py).
    external_probes: dict[str, Target] = field(default_factory=dict)


def load_local_mesh(repo: Repo, host: str | None = None, *,
                    create_secrets: bool = True) -> LocalMesh:
    paths = RuntimePaths(repo.root)
    name = local_host(repo, host)
    if create_secrets:
        paths.ensure()
        values = secrets.ensure(repo, paths)
    else:
        values = secrets.load(paths)
    envs = {s.name: compose(repo, paths, s.name, values) for s in repo.services.values()}
    ordered = start_order(services_on(repo, name))
    found = {s.name: inputs.inputs(repo, s, envs[s.name]) for s in ordered}
    for svc_name, digests in found.items():
        # In the program's config: a change to any input changes it, and `up` restarts it.
        envs[svc_name][inputs.INPUTS_ENV] = inputs.fingerprint(digests)
    programs = {s.name: program_for(repo, s, envs[s.name]) for s in ordered}
    swept = targets(repo, local_host=name, env=envs)  # one view rendering for both
    probes = {t.service: t for t in swept if t.service in programs}
    outside = {s.name for s in externals(repo)}
    external_probes = {t.service: t for t in swept if t.service in outside}
    return LocalMesh(repo, paths, name, programs, probes, found, external_probes)


@contextlib.contextmanager
def _locked(paths: RuntimePaths) -> Iterator[None]:
    """One `up`/`down` at a time per checkout."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpError("another `homelab up` or `homelab down` is running for this "
                          "checkout") from None
        yield


class UpError(RuntimeError):
    pass


def missing_commands(mesh: LocalMesh, chosen: list[Program]) -> list[str]:
    """Programs whose executable does not exist: caught before anything starts."""
    problems = []
    for program in chosen:
        exe = program.command[0]
        if "/" in exe:
            found = os.path.isfile(exe) and os.access(exe, os.X_OK)
        else:
            found = shutil.which(exe, path=prepare.clean_env().get("PATH")) is not None
        if not found:
            path = Path(exe)
            shown = path.relative_to(mesh.repo.root) if path.is_relative_to(mesh.repo.root) else exe
            problems.append(f"{program.name}: command not found or not executable: {shown}")
    return problems


def port_conflicts(mesh: LocalMesh, chosen: list[Program], sup: Supervisor,
                   info: dict[str, ProcInfo]) -> list[str]:
    """Ports of services to start that a process outside our supervisord holds."""
    sup_pid = sup.pid() if info else None
    problems = []
    for program in chosen:
        if program.port is None or program.bind is None:
            continue
        if program.name in info and info[program.name].state in LIVE_STATES:
            continue  # running already: who holds its port is checked when `up` reaches it
        try:
            taken = procfs.in_use(program.bind, program.port)
        except OSError as exc:
            problems.append(f"cannot bind {program.bind}:{program.port} ({program.name}) "
                            f"on this machine: {exc.strerror}")
            continue
        if not taken:
            continue
        owners = procfs.listener_pids(program.port)
        who = f" (pid {', '.join(map(str, sorted(owners)))})" if owners else ""
        leftovers = set(procfs.marked_processes(MARKER, str(mesh.repo.root)))
        if owners and sup_pid and any(procfs.descends_from(pid, sup_pid) for pid in owners):
            problems.append(f"port {program.port} ({program.name}) is held by another service "
                            f"of this mesh{who}")
        elif owners and owners <= leftovers:
            problems.append(f"port {program.port} ({program.name}) is held by a leftover "
                            f"process of this mesh{who}; run `homelab down` first")
        else:
            problems.append(f"port {program.port} ({program.name}) is already in use by "
                            f"another process{who}")
    return problems


def probe_once(target: Target) -> tuple[bool, str]:
    """(healthy, what the probe saw): meshkit's wording, as `health` and mesh-status print it."""
    result = probe(replace(target, timeout_s=min(target.timeout_s, 5.0)))
    return result.ok, result.error or "ok"


def log_tail(paths: RuntimePaths, name: str, lines: int = 20) -> str:
    try:
        text = paths.log(name).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no log yet)"
    return "\n".join(f"  | {line}" for line in text) or "  (log is empty)"


@dataclass(frozen=True)
class NotReady:
    why: str
    hint: str = ""


def _death(mesh: LocalMesh, state: ProcInfo) -> death.Death | None:
    return death.explain(state.name, state.state, state.exitstatus, state.spawnerr,
                         mesh.paths.supervisord_log)


def owner_problem(program: Program, pid: int | None) -> ownership.PortCheck | None:
    """None when the program's port is served by its own process group (or it has no port)."""
    if program.port is None or program.bind is None:
        return None
    found = ownership.check(program.bind, program.port, pid)
    return None if found.ok else found


def wait_ready(mesh: LocalMesh, sup: Supervisor, program: Program, timeout_s: float) -> NotReady | None:
    """None when the program is healthy (or RUNNING, without a health check); else why not."""
    target = mesh.probes.get(program.name)
    deadline = time.monotonic() + timeout_s
    last = "not probed yet"
    while True:
        state = sup.info().get(program.name)
        if state is None:
            return NotReady("not known to supervisord")
        if state.state == "FATAL":
            died = _death(mesh, state)
            return NotReady(died.sentence() if died else f"FATAL: {state.description}",
                            died.hint if died else "")
        if state.state == "STOPPED":
            return NotReady("stopped while starting")
        # EXITED and BACKOFF are transient: supervisord restarts it (with backoff) until it
        # either comes up, turns FATAL, or our timeout ends the wait.
        if target is not None:
            ok, last = probe_once(target)
            if ok and state.state in ("RUNNING", "STARTING"):
                # The answer must come from this program, not a leftover on its port.
                wrong = owner_problem(program, state.pid)
                if wrong is None or not wrong.strangers and wrong.extra:
                    return None
                ok, last = False, wrong.problem
        elif state.state == "RUNNING":
            return None
        if time.monotonic() >= deadline:
            where = target.url if target else "process"
            died = _death(mesh, state)
            tail = f"; last exit: {died.summary}" if died else ""
            return NotReady(f"not healthy after {timeout_s:.0f} s ({where}: {last}, state "
                            f"{state.state}{tail})", died.hint if died else "")
        time.sleep(0.25)


def _prepare(mesh: LocalMesh, chosen: list[Program], console: Console) -> None:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        for program in chosen:
            if program.uv_project is None:
                continue
            task = progress.add_task(f"uv sync  {program.name}", total=1)
            last = lambda line, t=task, n=program.name: progress.update(  # noqa: E731
                t, description=f"uv sync  {n}: {line[:70]}")
            seconds = prepare.sync(program, mesh.repo, last)
            progress.update(task, completed=1,
                            description=f"uv sync  {program.name} ({seconds:.1f} s)")
        for program in chosen:
            for cmd in program.prepare:
                label = f"prepare  {program.name}: {' '.join(cmd)}"[:90]
                task = progress.add_task(label, total=1)
                # A long prepare (llamacpp-server's first build: many minutes) shows its latest
                # line, so it is visibly progressing; the elapsed time column runs beside it.
                show = lambda line, t=task, n=program.name: progress.update(  # noqa: E731
                    t, description=f"prepare  {n}: {line[:70]}")
                seconds = prepare.run_prepare(program, cmd, show)
                progress.update(task, completed=1, description=f"{label} ({seconds:.1f} s)")


def up(repo: Repo, options: UpOptions, console: Console) -> int:
    external.check_skip(repo, options.skip)  # a wrong --skip is unusable input: nothing starts
    mesh = load_local_mesh(repo, options.host)
    names = [s.name for s in select(repo, mesh.host, with_=options.with_, only=options.only,
                                     only_label=options.only_label)]
    chosen = [mesh.programs[n] for n in names]
    conf_text = render(list(mesh.programs.values()), mesh.paths)  # raises Unrepresentable
    sup = Supervisor(mesh.paths)
    with _locked(mesh.paths):
        was_running = sup.running()
        info = sup.info() if was_running else {}
        conflicts = missing_commands(mesh, chosen) + port_conflicts(mesh, chosen, sup, info)
        if conflicts:
            for problem in conflicts:
                click.echo(f"error: {problem}", err=True)
            click.echo("nothing was started", err=True)
            return 1
        old_inputs = inputs.load(mesh.paths.inputs)
        if options.prepare:
            _prepare(mesh, chosen, console)
        for path, values in prepare.env_files_to_write(repo, chosen):
            prepare.write_env_file(path, values)
            console.print(f"wrote {path.relative_to(repo.root)}", markup=False, highlight=False)

        old_conf = mesh.paths.conf.read_text() if mesh.paths.conf.exists() else None
        if old_conf != conf_text:
            write_private(mesh.paths.conf, conf_text)
        _write_view(mesh)
        if not was_running:
            sup.start_daemon()
            conf = mesh.paths.conf.relative_to(repo.root)
            console.print(f"supervisord started (pid {sup.pid()}), config {conf}",
                          markup=False, highlight=False)
        else:
            # Always re-read: cheap, and a no-op when supervisord already has this config.
            changes = sup.apply_config()
            for name in changes["changed"]:
                why = ", ".join(inputs.what_changed(old_inputs.get(name), mesh.inputs.get(name, {})))
                if info.get(name) and info[name].state in LIVE_STATES:
                    # The update stopped it: start it again, and say why.
                    names += [name] if name not in names else []
                    console.print(f"  {name}: restarting: changed since it started: {why}",
                                  markup=False, highlight=False)
                else:
                    console.print(f"  {name}: config updated ({why})", markup=False,
                                  highlight=False)
            for kind in ("added", "removed"):
                if changes[kind]:
                    console.print(f"config {kind}: {', '.join(changes[kind])}", markup=False,
                                  highlight=False)
        inputs.save(mesh.paths.inputs, mesh.inputs)
        order = [p.name for p in mesh.programs.values() if p.name in names]
        return _start_all(mesh, sup, order, options.timeout_s, console, options.skip)


def _write_view(mesh: LocalMesh) -> None:
    """The programs' HOMELAB_MESH_VIEW: rendered from the same contracts they start from (what
    `homelab render` writes there too; untouched when already current)."""
    text = render_view(mesh.repo)
    old = mesh.paths.view.read_text() if mesh.paths.view.exists() else None
    if old != text:
        tmp = mesh.paths.view.with_name(mesh.paths.view.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, mesh.paths.view)


def _start_all(mesh: LocalMesh, sup: Supervisor, order: list[str], timeout_s: float,
               console: Console, skip: tuple[str, ...] = ()) -> int:
    width = max((len(n) for n in [*order, *mesh.external_probes]), default=0)
    warnings = 0
    waited: set[str] = set(skip)  # --skip: known to be absent, not waited for
    for name in skip:
        console.print(f"  {name:<{width}}  external, not waited for (--skip)", markup=False,
                      highlight=False)
    for name in order:
        program = mesh.programs[name]
        warnings += _wait_externals(mesh, name, waited, width, console)
        state = sup.info().get(name)
        if state and state.state in ("RUNNING", "STARTING"):
            # Running is not healthy until checked: who holds its port, then its health.
            wrong = owner_problem(program, state.pid)
            if wrong is not None and wrong.strangers:
                if not _reclaim(mesh, sup, program, wrong, console):
                    return 1
                state = sup.info().get(name)
            elif name not in mesh.probes or probe_once(mesh.probes[name])[0]:
                if wrong is not None:
                    click.echo(f"warning: {name}: {wrong.problem}", err=True)
                else:
                    console.print(f"  {name:<{width}}  already running, healthy", markup=False,
                                  highlight=False)
                continue
        start = time.monotonic()
        if not state or state.state not in LIVE_STATES:
            sup.start(name)
        failed = wait_ready(mesh, sup, program, timeout_s)
        if failed and name in mesh.probes and not mesh.probes[name].required:
            # health.required: false means the mesh works without it: warn and go on.
            warnings += 1
            click.echo(f"warning: {name} (optional): {failed.why}", err=True)
            click.echo(log_tail(mesh.paths, name, 10), err=True)
            if failed.hint:
                click.echo(f"  hint: {failed.hint}", err=True)
            continue
        if failed:
            click.echo(f"error: {name}: {failed.why}", err=True)
            click.echo(f"last lines of {mesh.paths.log(name).relative_to(mesh.repo.root)}:",
                       err=True)
            click.echo(log_tail(mesh.paths, name), err=True)
            if failed.hint:
                click.echo(f"hint: {failed.hint}", err=True)
            click.echo("services started so far keep running; `homelab down` stops them", err=True)
            return 1
        what = "healthy" if name in mesh.probes else "running"
        console.print(f"  {name:<{width}}  {what} in {time.monotonic() - start:.1f} s",
                      markup=False, highlight=False)
    _print_access(mesh, order, console)
    if warnings:
        click.echo(f"{warnings} optional or external service(s) not healthy; see the warnings "
                   "above", err=True)
    return 0


def _wait_externals(mesh: LocalMesh, name: str, waited: set[str], width: int,
                    console: Console) -> int:
    """Before `name` starts: wait (bounded) for the external backends it calls, each once. An
    absent one is a warning (the count returned), never a reason to stop: `name` still starts."""
    absent = 0
    for svc in external.needed_by(mesh.repo, name):
        target = mesh.external_probes.get(svc.name)
        if svc.name in waited or target is None:
            continue
        waited.add(svc.name)
        found = external.wait_for(svc, target)
        if found.ok:
            console.print(f"  {svc.name:<{width}}  external, healthy in {found.seconds:.1f} s "
                          f"(not run by the mesh)", markup=False, highlight=False)
        else:
            absent += 1
            # One line: greppable, like every other `up` warning.
            click.echo(f"warning: {external.absent_message(svc, found, name)}", err=True)
    return absent


def _reclaim(mesh: LocalMesh, sup: Supervisor, program: Program, wrong: ownership.PortCheck,
             console: Console) -> bool:
    """A running program whose port is held by processes outside its group: leftovers of this
    mesh (e.g. workers orphaned when their master was killed) are stopped and the program is
    restarted; anything else is a foreign process `up` must not touch."""
    leftovers = set(procfs.marked_processes(MARKER, str(mesh.repo.root)))
    strangers = set(wrong.strangers)
    if not strangers <= leftovers:
        click.echo(f"error: {program.name}: {wrong.problem}, which is not a process of this "
                   "mesh; stop it and run `homelab up` again", err=True)
        return False
    _terminate(strangers)
    console.print(f"  {program.name}: {wrong.problem}: leftovers of an earlier start (pid "
                  f"{', '.join(map(str, sorted(strangers)))}); stopped them, restarting "
                  f"{program.name}", markup=False, highlight=False, soft_wrap=True)  # one greppable line
    sup.stop(program.name)
    return True


def _terminate(pids: set[int]) -> None:
    """TERM, then KILL after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not any(_running(p) for p in pids):
            return


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _print_access(mesh: LocalMesh, order: list[str], console: Console) -> None:
    gateway = mesh.repo.mesh.gateway.service
    if gateway not in order:
        return
    console.print(f"gateway: {mesh.repo.mesh.gateway.public_base_url}", markup=False,
                  highlight=False)
    key = secrets.master_key_name(mesh.repo)
    if key:
        source = mesh.paths.secrets
        for path in secrets.service_env_files(mesh.repo, gateway):
            if key in prepare.envfiles.read(path):
                source = path
        root = mesh.repo.root
        rel = source.relative_to(root) if source.is_relative_to(root) else source
        console.print(f"key:     grep ^{key}= {rel} | cut -d= -f2-", markup=False, highlight=False)


def _kill_leftovers(repo: Repo, pgids: set[int]) -> list[int]:
    """Processes of this checkout's mesh still alive after supervisord is gone: members of the
    programs' process groups, and anything carrying our environment marker (e.g. orphans of a
    supervisord that was killed). TERM, then KILL after 5 s."""
    def alive() -> list[int]:
        return sorted(set(procfs.process_group_members(pgids))
                      | set(procfs.marked_processes(MARKER, str(repo.root))))

    found = alive()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive():
            break
    return found


def down(repo: Repo, console: Console) -> int:
    paths = RuntimePaths(repo.root)
    sup = Supervisor(paths)
    with _locked(paths):
        if not sup.running():
            leftovers = _kill_leftovers(repo, set())
            if leftovers:
                console.print(f"supervisord was not running; stopped {len(leftovers)} leftover "
                              f"process(es): {', '.join(map(str, leftovers))}", markup=False,
                              highlight=False)
            else:
                console.print("mesh is not running", markup=False, highlight=False)
            return 0
        info = sup.info()
        # supervisord makes each child a process group leader: pid == pgid.
        pgids = {p.pid for p in info.values() if p.pid}
        try:
            known = [repo.services[n] for n in info if n in repo.services]
            order = [s.name for s in start_order(known)]
        except Exception:  # noqa: BLE001 - a broken run.after must not block stopping
            order = []
        order += [n for n in info if n not in order]
        stopped = 0
        for name in reversed(order):
            if info[name].state in LIVE_STATES or info[name].state == "STOPPING":
                sup.stop(name)
                stopped += 1
                console.print(f"  {name}  stopped", markup=False, highlight=False)
        sup.shutdown()
        # What each service was started from means nothing once none runs (`up` compares with it).
        paths.inputs.unlink(missing_ok=True)
        leftovers = _kill_leftovers(repo, pgids)
        if leftovers:
            console.print(f"warning: stopped {len(leftovers)} leftover process(es): "
                          f"{', '.join(map(str, leftovers))}", markup=False, highlight=False)
        console.print(f"stopped {stopped} service(s) and supervisord", markup=False,
                      highlight=False)
        return 0


def up_written_env_files(repo: Repo) -> list[Path]:
    """Env files `up` wrote into the checkout (they hold secrets; recognised by their header)."""
    out = []
    for svc in repo.services.values():
        if svc.spec.env_file and not Path(svc.spec.env_file).is_absolute():
            path = repo.root / svc.rel_dir / svc.spec.env_file
            try:
                if "written by `homelab up`" in path.read_text(encoding="utf-8")[:400]:
                    out.append(path)
            except (OSError, UnicodeDecodeError):
                continue
    return out


def purge(repo: Repo, *, with_secrets: bool) -> list[str]:
    """Delete the checkout's runtime state (after `down`): everything under .homelab/ (logs,
    built models, run files, UI data kept under {state}), keeping secrets.env and the env files
    `up` wrote unless `with_secrets`. Never touches anything outside the checkout, nor the uv
    environments (.venv: rebuilt from the uv cache in seconds)."""
    paths = RuntimePaths(repo.root)
    removed: list[str] = []
    if paths.state.is_dir():
        for child in sorted(paths.state.iterdir()):
            if child == paths.secrets and not with_secrets:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed.append(str(child.relative_to(repo.root)))
    if with_secrets:
        for path in up_written_env_files(repo):
            path.unlink()
            removed.append(str(path.relative_to(repo.root)))
    if not paths.socket.is_relative_to(paths.state) and paths.socket.exists():
        paths.socket.unlink()  # the short socket path of a long checkout path, in $TMPDIR
    return removed


def stop(repo: Repo, names: tuple[str, ...], host: str | None, console: Console) -> int:
    """Stop these services; supervisord keeps them down until `start` or `up`."""
    mesh = load_local_mesh(repo, host, create_secrets=False)
    chosen = [s.name for s in select(repo, mesh.host, only=names, only_label="NAME")]  # unknown: exit 2
    sup = Supervisor(mesh.paths)
    if not sup.running():
        console.print("the mesh is not running (no supervisord); nothing to stop", markup=False,
                      highlight=False)
        return 0
    with _locked(mesh.paths):
        info = sup.info()
        for name in reversed(chosen):  # dependents first
            state = info.get(name)
            if state and state.state in (*LIVE_STATES, "STOPPING"):
                sup.stop(name)
                console.print(f"  {name}  stopped (pid {state.pid}); it stays down until "
                              f"`homelab start {name}` or `homelab up`", markup=False,
                              highlight=False)
            else:
                console.print(f"  {name}  was not running ({state.state if state else 'unknown'})",
                              markup=False, highlight=False)
    return 0
