"""Which public model names the gateway can serve right now, from one health sweep (pure).

LiteLLM's readiness does not look at backends, and its keyed deep /health sends a completion to
every deployment. This answers "is at least one path behind each public name up?" from the
services' own health probes instead: gateway -> backend, or gateway -> optimizer -> gateway name
-> backend for an alias, then the name's fallbacks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from homelab.load.repo import Repo
from homelab.routing import Route, routes
from homelab.runtime.probe import Result


@dataclass(frozen=True)
class ModelStatus:
    name: str
    state: str  # "up" | "fallback" (only through a fallback name) | "down" | "unknown" (not probed)
    path: str  # the services a request goes through, or what is down

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def _path(name: str, by_name: dict[str, Route], ok: dict[str, bool], seen: frozenset[str]
          ) -> tuple[bool | None, list[str]]:
    """(True/False/None = unknown, the hops) for serving `name` without its fallbacks."""
    route = by_name.get(name)
    if route is None or name in seen:  # a dangling or cyclic alias (check reports both)
        return False, [f"{name}?"]
    hop = route.service.name
    here = ok.get(hop)
    if not route.is_alias:
        return here, [hop]
    if here is False:
        return False, [hop]
    inner, hops = _path(route.target, by_name, ok, seen | {name})  # type: ignore[arg-type]
    if inner is False:  # the gateway serves the optimizer's call-back through its fallbacks too
        target = by_name.get(route.target)  # type: ignore[arg-type]
        for fallback in target.fallbacks if target else ():
            fb_state, fb_hops = _path(fallback, by_name, ok, seen | {name})
            if fb_state:
                inner, hops = fb_state, [*hops, f"fallback {fallback}", *fb_hops]
                break
    state = None if here is None or inner is None else inner
    return state, [hop, route.target, *hops]  # type: ignore[list-item]


def _status(route: Route, by_name: dict[str, Route], ok: dict[str, bool], gateway_ok: bool | None
            ) -> ModelStatus:
    state, hops = _path(route.name, by_name, ok, frozenset())
    via = ""
    if state is False:
        for fallback in route.fallbacks:
            fb_state, fb_hops = _path(fallback, by_name, ok, frozenset())
            if fb_state:
                state, via = True, f"fallback {fallback}: " + " -> ".join(fb_hops)
                break
        else:
            down = next((h for h in hops if ok.get(h) is False), hops[-1])
            return ModelStatus(route.name, "down", f"{down} is down ({' -> '.join(hops)})")
    if state is None or gateway_ok is None:
        return ModelStatus(route.name, "unknown", " -> ".join(hops) + " (not probed)")
    return ModelStatus(route.name, "fallback", via) if via else ModelStatus(route.name, "up", " -> ".join(hops))


def model_status(repo: Repo, results: list[Result]) -> list[ModelStatus]:
    """One row per public name (backend models, then aliases), in contract order."""
    ok = {r.service: r.ok for r in results}
    by_name = {r.name: r for r in routes(repo)}
    gateway = repo.mesh.gateway.service
    gateway_ok = ok.get(gateway)
    if gateway_ok is False:
        return [ModelStatus(name, "down", f"gateway {gateway} is down") for name in by_name]
    return [_status(route, by_name, ok, gateway_ok) for route in by_name.values()]
