"""What runs on this host and how: pure functions from the loaded repo to program specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from homelab.addresses import health_url
from homelab.contract.service import Run, expand
from homelab.errors import InputError
from homelab.load.repo import Repo, Service
from homelab.ordering import start_order
from homelab.runtime.hosts import services_on


@dataclass(frozen=True)
class Program:
    """One supervised process: a service of this host with everything filled in."""

    name: str
    kind: str
    command: tuple[str, ...]
    directory: Path
    env: dict[str, str] = field(hash=False, compare=True)
    bind: str | None
    port: int | None
    health_url: str | None
    autostart: bool
    uv_project: Path | None
    prepare: tuple[tuple[str, ...], ...] = ()  # run by `up` before starting (contract run.prepare)


def placeholders(repo: Repo, svc: Service) -> dict[str, str]:
    """Values of the contract's placeholders on this checkout (run.command, prepare, env defaults)."""
    spec = svc.spec
    return {
        "bind": spec.bind or "",
        "port": str(spec.port) if spec.port else "",
        "service_dir": str(repo.root / svc.rel_dir),
        "repo": str(repo.root),
        "host_address": repo.host_address(spec.host) or "",
    }


def run_of(svc: Service) -> Run:
    """The contract's `run`; an external backend has none and is never a program
    (hosts.services_on leaves it out), so reaching here with one is a bug, not bad input."""
    if svc.spec.run is None:
        raise AssertionError(f"{svc.name} is external: the mesh does not run it")
    return svc.spec.run


def command_for(repo: Repo, svc: Service) -> tuple[str, ...]:
    values = placeholders(repo, svc)
    args = [expand(a, values) for a in run_of(svc).command]
    # supervisord resolves a program path containing "/" against ITS cwd, not the program's
    # directory: make service-relative scripts (scripts/start.sh) absolute.
    if "/" in args[0] and not Path(args[0]).is_absolute():
        args[0] = str((directory_for(repo, svc) / args[0]).resolve())
    return tuple(args)


def directory_for(repo: Repo, svc: Service) -> Path:
    return (repo.root / svc.rel_dir / run_of(svc).workdir).resolve()


def program_for(repo: Repo, svc: Service, env: dict[str, str]) -> Program:
    run = run_of(svc)
    uv = run.uv_project
    values = placeholders(repo, svc)
    return Program(
        name=svc.name,
        kind=svc.spec.kind,
        command=command_for(repo, svc),
        directory=directory_for(repo, svc),
        env=env,
        bind=svc.spec.bind,
        port=svc.spec.port,
        health_url=health_url(repo, svc, local=True),
        autostart=run.autostart,
        uv_project=(repo.root / svc.rel_dir / uv).resolve() if uv is not None else None,
        prepare=tuple(tuple(expand(a, values) for a in cmd) for cmd in run.prepare),
    )


def select(repo: Repo, host: str, *, with_: tuple[str, ...] = (),
           only: tuple[str, ...] = (), only_label: str = "--only") -> list[Service]:
    """The services `up` starts, in start order: the host's autostart services plus --with, or
    exactly --only. Unknown names or names on another host are unusable input."""
    here = {s.name: s for s in services_on(repo, host)}
    problems = []
    for option, names in (("--with", with_), (only_label, only)):
        for name in names:
            if name not in repo.services:
                problems.append(f"{option} {name}: no such service "
                                f"(known: {', '.join(sorted(repo.services))})")
            elif (ext := repo.services[name].spec.external) is not None:
                problems.append(f"{option} {name}: external, not run by the mesh (run by "
                                f"{ext.managed_by}); start or stop it where it runs")
            elif name not in here:
                problems.append(f"{option} {name}: runs on host "
                                f"{repo.services[name].spec.host!r}, not {host!r}")
    if problems:
        raise InputError([_problem(p) for p in problems])
    if only:
        chosen = [here[n] for n in dict.fromkeys(only)]
    else:
        chosen = [s for s in here.values() if s.spec.autostart or s.name in with_]
    return start_order(chosen)


def _problem(message: str):  # noqa: ANN202 - tiny adapter to the shared Problem type
    from homelab.errors import Problem

    return Problem("command line", None, message)
