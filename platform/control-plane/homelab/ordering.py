"""In what order services start: run.after first, then by kind (pure, over loaded services)."""

from __future__ import annotations

import heapq
from graphlib import CycleError, TopologicalSorter

from homelab.load.repo import Service

# Start order within one dependency level: what others call comes up first.
KIND_ORDER = {"backend": 0, "gateway": 1, "optimizer": 2, "mcp-tool": 3, "client": 4, "interface": 5,
              "observer": 6}


def start_order(services: list[Service]) -> list[Service]:
    """Dependency order from run.after (among the given services); among the services that are
    free to start, backends first, then gateway, optimizer, tools, clients, interfaces.

    Raises graphlib.CycleError when run.after loops; `homelab check` reports that as HL406.
    """
    by_name = {s.name: s for s in services}
    deps = {s.name: {d for d in s.spec.after if d in by_name} for s in services}
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


__all__ = ["KIND_ORDER", "CycleError", "start_order"]
