"""HL4xx: clients reach only the gateway; routing is acyclic; everything named exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from graphlib import CycleError
from urllib.parse import urlsplit

from homelab.addresses import base_url, start_order
from homelab.load.repo import MESH_FILE, Service
from homelab.routing import describe_cycle, find_cycles, routes
from homelab.rules.base import Context, Violation

URL_RE = re.compile(r"https?://[^\s\"'<>`)]+")
CLIENT_MAY_CALL = {"gateway", "mcp-tool"}


LOCALHOST_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _netloc(url: str) -> tuple[str, int | None] | None:
    """(host, port) to compare addresses; `localhost` is 127.0.0.1 (it resolves there)."""
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

    # Addresses of things a client must never call directly.
    forbidden: dict[tuple[str, int | None], str] = {}
    for svc in repo.by_kind("backend", "optimizer"):
        for url in {base_url(repo, svc), base_url(repo, svc, local=True)} - {None}:
            loc = _netloc(url)  # type: ignore[arg-type]
            if loc:
                forbidden[loc] = svc.name
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
        for i, dep in enumerate(spec.run.after):
            if dep not in repo.services:
                yield Violation(src.path, src.line("run", "after", i), "HL403", "unknown-upstream",
                                f"run.after names {dep!r}, which is not a service in the mesh")
        if spec.kind in ("client", "interface"):
            yield from _client_urls(ctx, svc, forbidden, allowed)

    names = [r.name for r in routes(repo)]
    for route in routes(repo):
        src = route.service.source
        if names.count(route.name) > 1:
            yield Violation(src.path, None, "HL405", "duplicate-model-name",
                            f"public name {route.name!r} is declared more than once in the mesh")
        if route.target is not None and route.target not in names:
            yield Violation(src.path, None, "HL403", "unknown-upstream",
                            f"alias {route.name} targets {route.target!r}, which the gateway does not serve")
        for fb in route.fallbacks:
            if fb not in names or fb == route.name:
                yield Violation(src.path, None, "HL403", "unknown-upstream",
                                f"{route.name} falls back to {fb!r}, which is not another public name")
    for cycle in find_cycles(repo):
        src = next(r.service.source for r in routes(repo) if r.name == cycle[0])
        yield Violation(src.path, None, "HL402", "routing-cycle",
                        f"routing loop: {describe_cycle(repo, cycle)}")
    try:
        start_order(list(repo.services.values()))
    except CycleError as exc:
        yield Violation(MESH_FILE, None, "HL406", "start-order-cycle",
                        f"run.after forms a loop: {' -> '.join(exc.args[1])}")


def _client_urls(ctx: Context, svc: Service, forbidden: dict[tuple[str, int | None], str],
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
            yield Violation(path, None, "HL403", "unknown-upstream",
                            f"client config file {rel} named in the contract is missing")
            continue
        for n, line in enumerate(text.splitlines(), 1):
            candidates += [(path, n, m.group(0)) for m in URL_RE.finditer(line)]
    for path, line, url in candidates:
        loc = _netloc(url.rstrip(".,;"))
        if loc is None:
            continue
        if loc in forbidden:
            yield Violation(path, line, "HL401", "client-bypasses-gateway",
                            f"{spec.name} points at {url}, the address of {forbidden[loc]}; "
                            "clients must use the gateway")
        elif spec.client and url == spec.client.default_api_base and loc not in allowed:
            yield Violation(path, line, "HL401", "client-bypasses-gateway",
                            f"{spec.name}'s default base URL {url} is not the gateway "
                            f"({ctx.repo.mesh.gateway.public_base_url})")

