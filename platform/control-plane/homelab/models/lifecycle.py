"""`homelab models add|rm|list`: the checks, then the changes in an order that leaves nothing
half done.

add: name (mesh pattern, unused) and backend (exists, a backend, an engine we know) are checked
first; the file is then landed (verified, atomic) and loaded by the engine in a process of its
own; only then is it registered with the engine (hot reload), added to the contract with every
derived file rendered (all or nothing), and the gateway alone restarted. A failure before the
registration removes the landed file; nothing else was touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homelab.errors import InputError
from homelab.load.repo import Repo, Service
from homelab.models import contract, download
from homelab.models.engines import ADDED_DIR, Engine, Site, engine_of, site_of
from homelab.models.source import parse_source
from homelab.routing import routes

ADD = "homelab models add"
RM = "homelab models rm"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    service: Service
    engine: Engine
    site: Site


def _engine_backends(repo: Repo) -> list[Service]:
    return [s for s in repo.by_kind("backend") if engine_of(s) is not None]


def choose_backend(repo: Repo, backend: str | None) -> Target:
    if backend is None:
        known = _engine_backends(repo)
        # Opt-in engines (llamacpp-server: `up --with`) are chosen only by name, so the default
        # stays the engine a plain `homelab up` runs.
        default = [s for s in known if s.spec.autostart] if len(known) > 1 else known
        if len(default) != 1:
            names = ", ".join(s.name for s in known) or "none"
            raise InputError.one(ADD, f"--backend: name the backend (backends with a known engine: {names})")
        svc = default[0]
    else:
        svc = repo.services.get(backend)
        if svc is None:
            raise InputError.one(ADD, f"--backend {backend}: no such service (backends: "
                                      f"{', '.join(s.name for s in repo.by_kind('backend')) or 'none'})")
        if svc.spec.kind != "backend":
            raise InputError.one(ADD, f"--backend {backend}: is a {svc.spec.kind}, not a backend")
    engine = engine_of(svc)
    if engine is None:
        raise InputError.one(ADD, f"--backend {svc.name}: no engine adapter knows how it reads models "
                                  "(known: ov-server's OV_SERVER_REGISTRY, llamacpp-server's "
                                  "LLAMACPP_SERVER_PRESETS)")
    return Target(svc, engine, site_of(repo, svc))


def check_name(repo: Repo, target: Target, name: str) -> None:
    pattern = repo.mesh.model_name_pattern
    if not re.fullmatch(pattern, name):
        raise InputError.one(ADD, f"NAME {name!r} does not match the mesh's model name pattern "
                                  f"{pattern} (mesh/mesh.yaml model_name_pattern)")
    for route in routes(repo):
        if route.name == name:
            raise InputError.one(ADD, f"NAME {name!r} is already served by {route.service.name} "
                                      f"({route.service.rel_dir}/SERVICE_SPEC.md); `homelab models rm "
                                      f"{name}` first or pick another name")
    if name in target.engine.entries(target.site):
        raise InputError.one(ADD, f"NAME {name!r} is already in {target.service.name}'s own model "
                                  "configuration (not in its contract); remove it there first")


def _check_sha(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InputError.one(ADD, f"--sha256 {sha256!r}: expected 64 hex digits")
    return value


@dataclass(frozen=True)
class Added:
    name: str
    backend: str
    path: Path
    size: int
    sha256: str
    resumed_at: list[int]
    check_s: float
    written: list[str]


def add(repo: Repo, name: str, source_text: str, *, sha256: str | None, backend: str | None,
        cwd: Path, reporter: download.Reporter | None = None, echo: Echo = print) -> Added:
    """Land, check, register and route model `name`. Nothing is changed if any step fails."""
    sha = _check_sha(sha256)
    source = parse_source(source_text, cwd)
    target = choose_backend(repo, backend)
    check_name(repo, target, name)
    if not source.basename.endswith(target.engine.suffixes):
        raise InputError.one(ADD, f"--from {source_text}: {target.engine.label} takes "
                                  f"{' / '.join(target.engine.suffixes)} files, not {source.basename!r}")
    suffix = next(s for s in target.engine.suffixes if source.basename.endswith(s))
    dest = target.engine.model_dir(target.site) / ADDED_DIR / f"{name}{suffix}"
    if dest.exists():
        raise InputError.one(dest, f"a file is already there (left by an earlier add of {name}?); "
                                   "remove it or pick another name")
    landed = download.obtain(source, dest, sha256=sha, reporter=reporter)
    echo(f"landed {landed.path} ({landed.size} bytes, sha256 {landed.sha256})")
    try:
        t0 = time.monotonic()
        echo(f"checking that {target.engine.label} loads it ...")
        try:
            target.engine.check_loadable(target.site, name, landed.path)
        except InputError as exc:  # name the file as the user gave it (the landed copy is removed)
            raise InputError.one(f"{ADD} --from {source_text}", exc.problems[0].message) from None
        check_s = time.monotonic() - t0
        files = contract.plan_add(repo, target.service, name)
    except BaseException:
        landed.path.unlink(missing_ok=True)
        raise
    target.engine.register(target.site, name, landed.path)
    try:
        written = contract.write(repo.root, files)
    except BaseException:
        target.engine.unregister(target.site, name)
        landed.path.unlink(missing_ok=True)
        raise
    return Added(name, target.service.name, landed.path, landed.size, landed.sha256,
                 landed.resumed_at, check_s, written)


def wait_served(repo: Repo, backend: str, name: str, timeout_s: float = 300.0) -> str:
    """The engine's state for `name` once it is no longer loading ('not running' if it does not
    answer)."""
    svc = repo.services[backend]
    engine = engine_of(svc)
    assert engine is not None
    site = site_of(repo, svc)
    deadline = time.monotonic() + timeout_s
    while True:
        live = engine.live(site)
        if live is None:
            return "not running"
        state = live.get(name, "not loaded yet")
        if state == "ok" or state.startswith("failed") or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


def _serving(repo: Repo, name: str) -> Service | None:
    return next((r.service for r in routes(repo) if r.name == name and not r.is_alias), None)


def blockers(repo: Repo, name: str, *, force: bool) -> list[str]:
    svc = _serving(repo, name)
    if svc is None:
        served = sorted(r.name for r in routes(repo) if not r.is_alias)
        return [f"NAME {name!r}: no backend serves it (models: {', '.join(served)})"]
    problems = []
    users = sorted(f"{m.name} ({s.name})" for s in repo.by_kind("backend") for m in s.spec.models
                   if name in m.fallbacks)
    if users and not force:
        problems.append(f"{name} is the fallback of {', '.join(users)}; --force removes it from "
                        "their fallbacks too")
    for opt in repo.by_kind("optimizer"):
        if any(a.target == name for a in opt.spec.aliases):
            problems.append(f"optimizer {opt.name} has aliases of {name}; remove them from its contract first")
    for other in repo.services.values():
        c = other.spec.client
        defaults = {v.default for v in other.spec.env if v.default} | ({c.default_model} if c else set())
        if name in defaults:
            problems.append(f"{other.name} defaults to model {name}; give it another default first")
    if len(svc.spec.models) == 1:
        problems.append(f"{name} is the only model of {svc.name} (a backend must serve one); "
                        f"`homelab rm {svc.name}` removes the backend")
    return problems


@dataclass(frozen=True)
class Removed:
    name: str
    backend: str
    deleted_file: str | None
    written: list[str]


def remove(repo: Repo, name: str, *, force: bool) -> Removed:
    if problems := blockers(repo, name, force=force):
        raise InputError([InputError.one(RM, p).problems[0] for p in problems])
    svc = _serving(repo, name)
    assert svc is not None
    files = contract.plan_remove(repo, name, drop_fallbacks=force)
    engine = engine_of(svc)
    deleted = None
    if engine is not None:
        site = site_of(repo, svc)
        added = (engine.model_dir(site) / ADDED_DIR).resolve()
        path = engine.unregister(site, name)
        # Only files `models add` landed are deleted; a registry entry pointing elsewhere keeps its file.
        if path and Path(path).resolve().parent == added:
            Path(path).unlink(missing_ok=True)
            deleted = path
    written = contract.write(repo.root, files)
    return Removed(name, svc.name, deleted, written)


@dataclass(frozen=True)
class Row:
    name: str
    backend: str
    file: str
    size: int | None
    state: str  # the engine's word ('ok', 'loading', 'failed: ...'), 'not running', 'not registered'


def rows(repo: Repo) -> list[Row]:
    out = []
    for svc in repo.by_kind("backend"):
        engine = engine_of(svc)
        site = site_of(repo, svc) if engine else None
        try:
            entries = engine.entries(site) if engine and site else {}
        except InputError:
            entries = {}  # no registry configured: the engine serves its built-in models
        live = engine.live(site) if engine and site else None
        for m in svc.spec.models:
            entry = entries.get(m.upstream_id)
            if live is None:
                state = "not running" if engine else "unknown (no engine adapter)"
            else:
                state = live.get(m.upstream_id, "not served")
            if entries and entry is None and engine:
                state = f"not registered ({state})" if live is None else state
            out.append(Row(m.name, svc.name, entry.file if entry else "-",
                           entry.size if entry else None, state))
    return out
