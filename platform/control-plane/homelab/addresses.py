"""Where a service is reached from: pure functions over a loaded repo."""

from __future__ import annotations

import heapq
import ipaddress
from graphlib import CycleError, TopologicalSorter

from homelab.load.repo import Repo, Service

# Start order within one dependency level: what others call comes up first.
KIND_ORDER = {"backend": 0, "gateway": 1, "optimizer": 2, "mcp-tool": 3, "client": 4, "interface": 5,
              "observer": 6}


def reach_address(repo: Repo, svc: Service) -> str | None:
    """The address peers use: the bind address, or the host's address for a wildcard bind."""
    bind = svc.spec.bind
    if bind is None:
        return None
    if ipaddress.ip_address(bind).is_unspecified:
        return repo.host_address(svc.spec.host) or "127.0.0.1"
    return bind


def base_url(repo: Repo, svc: Service, *, local: bool = False) -> str | None:
    """http://addr:port; `local` probes a wildcard-bound service on loopback (same host)."""
    address = reach_address(repo, svc)
    if address is None or svc.spec.port is None:
        return None
    if local and svc.spec.bind and ipaddress.ip_address(svc.spec.bind).is_unspecified:
        address = "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{svc.spec.port}"


def health_url(repo: Repo, svc: Service, *, local: bool = False) -> str | None:
    url = base_url(repo, svc, local=local)
    return url + svc.spec.health.path if url and svc.spec.health else None


def start_order(services: list[Service]) -> list[Service]:
    """Dependency order from run.after (among the given services); among the services that are
    free to start, backends first, then gateway, optimizer, tools, clients, interfaces.

    Raises graphlib.CycleError when run.after loops; `homelab check` reports that as HL406.
    """
    by_name = {s.name: s for s in services}
    deps = {s.name: {d for d in s.spec.run.after if d in by_name} for s in services}
    TopologicalSorter(deps).prepare()  # raises CycleError with the cycle
    rank = lambda n: (KIND_ORDER[by_name[n].spec.kind], n)  # noqa: E731
    ready = [rank(n) for n, d in deps.items() if not d]
    heapq.heapify(ready)
    ordered: list[Service] = []
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    for n, d in deps.items():
        for dep in d:
            dependents[dep].append(n)
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for other in dependents[name]:
            deps[other].discard(name)
            if not deps[other]:
                heapq.heappush(ready, rank(other))
    return ordered


__all__ = ["CycleError", "base_url", "health_url", "reach_address", "start_order"]
