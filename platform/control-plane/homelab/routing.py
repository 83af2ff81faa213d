"""The gateway's routing table and graph, derived from contracts (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from homelab.addresses import base_url
from homelab.load.repo import Repo, Service


@dataclass(frozen=True)
class Route:
    """One public name at the gateway."""

    name: str
    service: Service  # the backend or optimizer the gateway sends it to
    upstream_model: str  # the model id sent upstream (for an alias: '<approach>-<target>')
    target: str | None = None  # alias only: the gateway name the optimizer calls back with
    fallbacks: tuple[str, ...] = ()

    @property
    def is_alias(self) -> bool:
        return self.target is not None


def routes(repo: Repo) -> list[Route]:
    """Backend models first, then optimizer aliases; contract order within each."""
    out: list[Route] = []
    for svc in repo.by_kind("backend"):
        out += [Route(m.name, svc, m.upstream_id, fallbacks=tuple(m.fallbacks)) for m in svc.spec.models]
    for svc in repo.by_kind("optimizer"):
        out += [Route(a.name, svc, f"{a.approach}-{a.target}", target=a.target) for a in svc.spec.aliases]
    return out


def api_base(repo: Repo, svc: Service) -> str:
    """Where the gateway reaches a service: loopback when they share a host and it binds loopback."""
    gateway = repo.services.get(repo.mesh.gateway.service)
    same_host = gateway is not None and gateway.spec.host == svc.spec.host
    # An external server says where its OpenAI API lives (`external.api_path`, default /v1).
    api_path = svc.spec.external.api_path if svc.spec.external else "/v1"
    return f"{base_url(repo, svc, local=same_host)}{api_path}"


def find_cycles(repo: Repo) -> list[list[str]]:
    """Cycles in gateway name -> optimizer -> gateway name ... -> backend. Each as a node path."""
    by_name = {r.name: r for r in routes(repo)}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append(path[path.index(name):] + [name])
            return
        route = by_name.get(name)
        if route is None or name in done or not route.is_alias:
            return
        walk(route.target, path + [name])  # type: ignore[arg-type]
        done.add(name)

    for name in by_name:
        walk(name, [])
    unique: dict[frozenset[str], list[str]] = {}
    for cycle in cycles:
        unique.setdefault(frozenset(cycle), cycle)
    return list(unique.values())


def describe_cycle(repo: Repo, cycle: list[str]) -> str:
    by_name = {r.name: r for r in routes(repo)}
    hops = []
    for name in cycle[:-1]:
        route = by_name[name]
        hops.append(f"{name} -> {route.service.name}({route.upstream_model}) -> gateway")
    return " -> ".join(hops) + f" -> {cycle[-1]}"
