"""HL4xx: clients reach only the gateway; routing is acyclic; everything named exists."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from graphlib import CycleError
from pathlib import Path
from urllib.parse import urlsplit

from meshkit.addresses import LOCALHOST_NAMES, NeverCall, owner, url_owner

from homelab.addresses import base_url, never_call
from homelab.ordering import start_order
from homelab.load.repo import MESH_FILE, Repo, Service
from homelab.routing import Route, describe_cycle, find_cycles, routes
from homelab.rules.base import Context, Violation

URL_RE = re.compile(r"https?://[^\s\"'<>`)]+")
CLIENT_MAY_CALL = {"gateway", "mcp-tool"}



def _netloc(url: str) -> tuple[str, int | None] | None:
    """(host, port) to compare with the gateway's addresses; `localhost` is 127.0.0.1."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return ("127.0.0.1" if host in LOCALHOST_NAMES else host,
                parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:
        return None


def check(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    mesh_src = repo.sources[MESH_FILE]
    gateway = repo.services.get(repo.mesh.gateway.service)
    if gateway is None or gateway.spec.kind != "gateway":
        yield Violation(MESH_FILE, mesh_src.line("gateway", "service"), "HL404", "gateway-missing",
                        f"gateway.service {repo.mesh.gateway.service!r} is not a service of kind gateway")
    for svc in repo.by_kind("gateway"):
        if gateway is not None and svc.name != gateway.name:
            yield Violation(svc.source.path, svc.source.line("kind"), "HL404", "gateway-missing",
                            f"{svc.name} is a second gateway; mesh.yaml names {gateway.name}")

    # Addresses of things a client must never call directly: the same list the view gives clients.
    forbidden = never_call(repo)
    allowed: set[tuple[str, int | None]] = set()
    for svc in repo.by_kind("gateway", "mcp-tool"):
        for url in {base_url(repo, svc), base_url(repo, svc, local=True)} - {None}:
            if loc := _netloc(url):  # type: ignore[arg-type]
                allowed.add(loc)
    if gw_loc := _netloc(repo.mesh.gateway.public_base_url):
        allowed.add(gw_loc)

    for svc in repo.services.values():
        spec, src = svc.spec, svc.source
        for i, up in enumerate(spec.upstreams):
            target = repo.services.get(up)
            if target is None:
                yield Violation(src.path, src.line("upstreams", i), "HL403", "unknown-upstream",
                                f"upstream {up!r} is not a service in the mesh")
            elif spec.kind in ("client", "interface") and target.spec.kind not in CLIENT_MAY_CALL:
                yield Violation(src.path, src.line("upstreams", i), "HL401", "client-bypasses-gateway",
                                f"{spec.kind} {spec.name} calls {target.spec.kind} {up} directly; "
                                "clients reach models only through the gateway")
        for i, dep in enumerate(spec.after):
            if dep not in repo.services:
                yield Violation(src.path, src.line("run", "after", i), "HL403", "unknown-upstream",
                                f"run.after names {dep!r}, which is not a service in the mesh")
        if spec.kind in ("client", "interface"):
            yield from _client_urls(ctx, svc, forbidden, allowed)

    names = [r.name for r in routes(repo)]
    for route in routes(repo):
        src = route.service.source
        if names.count(route.name) > 1:
            yield Violation(src.path, route_line(route, "name"), "HL405", "duplicate-model-name",
                            f"public name {route.name!r} is declared more than once in the mesh")
        if route.target is not None and route.target not in names:
            yield Violation(src.path, route_line(route, "target"), "HL403", "unknown-upstream",
                            f"alias {route.name} targets {route.target!r}, which the gateway does not serve")
        for j, fb in enumerate(route.fallbacks):
            if fb not in names or fb == route.name:
                yield Violation(src.path, route_line(route, "fallbacks", j), "HL403", "unknown-upstream",
                                f"{route.name} falls back to {fb!r}, which is not another public name")
    for cycle in find_cycles(repo):
        route = next(r for r in routes(repo) if r.name == cycle[0])
        yield Violation(route.service.source.path, route_line(route, "target"), "HL402",
                        "routing-cycle", f"routing loop: {describe_cycle(repo, cycle)}")
    try:
        start_order(list(repo.services.values()))
    except CycleError as exc:
        loop = exc.args[1]
        svc = repo.services[loop[0]]
        yield Violation(svc.source.path, svc.source.line("run", "after") or svc.source.line("run"),
                        "HL406", "start-order-cycle", f"run.after forms a loop: {' -> '.join(loop)}")
    yield from _undeclared(repo)


def route_line(route: Route, *field: str | int) -> int | None:
    """Line of a public name's entry (models[i] or aliases[i]) in its contract."""
    spec, src = route.service.spec, route.service.source
    key, items = ("aliases", spec.aliases) if route.is_alias else ("models", spec.models)
    i = next((k for k, item in enumerate(items) if item.name == route.name), 0)
    return src.line(key, i, *field) or src.line(key, i) or src.line(key)


def _undeclared(repo: Repo) -> Iterator[Violation]:
    """HL407: `upstreams`/`run.after` say what a service really calls."""
    gateway = repo.services.get(repo.mesh.gateway.service)
    if gateway is not None:
        src = gateway.source
        for name in dict.fromkeys(r.service.name for r in routes(repo)):
            if name not in gateway.spec.upstreams:
                yield Violation(src.path, src.line("upstreams") or src.line("name"), "HL407",
                                "upstream-not-declared",
                                f"the gateway routes to {name} but its `upstreams` do not list it")
    tools = repo.by_kind("mcp-tool")
    for svc in repo.by_kind("client", "interface"):
        if not (svc.spec.client and svc.spec.client.mcp_registry):
            continue
        src = svc.source
        for tool in tools:
            if tool.name not in svc.spec.upstreams:
                yield Violation(src.path, src.line("upstreams") or src.line("client", "mcp_registry"),
                                "HL407", "upstream-not-declared",
                                f"{svc.name} reads the MCP registry but its `upstreams` do not list "
                                f"{tool.name}")
            if tool.spec.port is not None and tool.spec.host == svc.spec.host \
                    and tool.name not in svc.spec.after:
                yield Violation(src.path, src.line("run", "after") or src.line("run"), "HL407",
                                "upstream-not-declared",
                                f"{svc.name} reads the MCP registry but starts before the HTTP tool "
                                f"{tool.name} (add it to `run.after`)")


def _client_urls(ctx: Context, svc: Service, forbidden: list[NeverCall],
                 allowed: set[tuple[str, int | None]]) -> Iterator[Violation]:
    """URLs in a client's defaults and config files (scanned as text, any format)."""
    spec, src = svc.spec, svc.source
    candidates: list[tuple[str, int | None, str]] = []
    if spec.client:
        candidates.append((src.path, src.line("client", "default_api_base"), spec.client.default_api_base))
    candidates += [(src.path, src.line("env", i, "default"), v.default)
                   for i, v in enumerate(spec.env) if v.default and URL_RE.match(v.default)]
    for rel in spec.client.config_files if spec.client else []:
        path = f"{svc.rel_dir}/{rel}"
        text = ctx.read(path)
        if text is None:
            i = spec.client.config_files.index(rel) if spec.client else 0
            yield Violation(src.path, src.line("client", "config_files", i), "HL403", "unknown-upstream",
                            f"client config file {rel} named in the contract is missing")
            continue
        for n, line in enumerate(text.splitlines(), 1):
            candidates += [(path, n, m.group(0)) for m in URL_RE.finditer(line)]
    yield from _sources(ctx, svc, forbidden)
    for path, line, url in candidates:
        loc = _netloc(url.rstrip(".,;"))
        if loc is None:
            continue
        if hit := url_owner(url.rstrip(".,;"), forbidden):
            yield Violation(path, line, "HL401", "client-bypasses-gateway",
                            f"{spec.name} points at {url}, the address of {hit.service}; "
                            "clients must use the gateway")
        elif spec.client and url == spec.client.default_api_base and loc not in allowed:
            yield Violation(path, line, "HL401", "client-bypasses-gateway",
                            f"{spec.name}'s default base URL {url} is not the gateway "
                            f"({ctx.repo.mesh.gateway.public_base_url})")



# The client's own code and config (its tests may name a backend on purpose: to assert it is refused).
SOURCE_SUFFIXES = {".py", ".js", ".mjs", ".cjs", ".ts", ".json", ".yaml", ".yml", ".toml", ".ini",
                   ".cfg", ".conf", ".env", ".sh", ".txt"}
SKIP_DIRS = {".venv", "venv", "node_modules", "tests", "test", "__pycache__", ".git", "dist",
             "build", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis"}
ALLOW_ADDRESS = "homelab: allow-address"  # a line that names a backend on purpose (a deny-list)
MAX_SOURCE_BYTES = 1_000_000


def source_files(root: Path, rel_dir: str) -> Iterator[str]:
    """Relative paths of a service's own source and config files (no tests, no environments)."""
    base = root / rel_dir
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in SOURCE_SUFFIXES and not name.startswith("test_") \
                    and not name.endswith("_test.py") and name != "conftest.py":
                yield str(path.relative_to(root))


def _sources(ctx: Context, svc: Service, forbidden: list[NeverCall]) -> Iterator[Violation]:
    """Backend/optimizer addresses anywhere in the client's own files, with or without a scheme."""
    if not forbidden:
        return
    hosts = "|".join(sorted({re.escape(n.address) for n in forbidden if ":" not in n.address}
                            | {re.escape(h) for h in LOCALHOST_NAMES}, key=lambda h: (-len(h), h)))
    bare = re.compile(rf"(?<![\w.-])({hosts}|\[[0-9a-fA-F:]+\]):(\d{{1,5}})\b")
    configs = {f"{svc.rel_dir}/{f}" for f in (svc.spec.client.config_files if svc.spec.client else [])}
    for rel in source_files(ctx.root, svc.rel_dir):
        if rel in configs:
            continue  # scanned as a config file (every URL there must be the gateway's)
        path = ctx.root / rel
        try:
            if path.stat().st_size > MAX_SOURCE_BYTES:
                continue
        except OSError:
            continue
        text = ctx.read(rel)
        if not text:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if ALLOW_ADDRESS in line:
                continue
            for m in bare.finditer(line):
                if hit := owner(m.group(1), int(m.group(2)), forbidden):
                    yield Violation(rel, n, "HL401", "client-bypasses-gateway",
                                    f"{svc.name}'s source names {m.group(0)}, the address of "
                                    f"{hit.service}; clients must use the gateway")
