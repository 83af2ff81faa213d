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


Down = dict[str, dict[str, str]]  # service -> {model it reports down: why}


def _path(name: str, by_name: dict[str, Route], ok: dict[str, bool], down: Down, seen: frozenset[str]
          ) -> tuple[bool | None, list[str], str | None]:
    """(True/False/None = unknown, the hops, why a model inside an up service is down) for serving
    `name` without its fallbacks."""
    route = by_name.get(name)
    if route is None or name in seen:  # a dangling or cyclic alias (check reports both)
        return False, [f"{name}?"], None
    hop = route.service.name
    here = ok.get(hop)
    if not route.is_alias:
        why = down.get(hop, {}).get(route.upstream_model)
        if here and why is not None:
            return False, [hop], f"{hop} does not serve {route.upstream_model}: {why}"
        return here, [hop], None
    if here is False:
        return False, [hop], None
    inner, hops, why = _path(route.target, by_name, ok, down, seen | {name})  # type: ignore[arg-type]
    if inner is False:  # the gateway serves the optimizer's call-back through its fallbacks too
        target = by_name.get(route.target)  # type: ignore[arg-type]
        for fallback in target.fallbacks if target else ():
            fb_state, fb_hops, _ = _path(fallback, by_name, ok, down, seen | {name})
            if fb_state:
                inner, hops, why = fb_state, [*hops, f"fallback {fallback}", *fb_hops], None
                break
    state = None if here is None or inner is None else inner
    return state, [hop, route.target, *hops], why  # type: ignore[list-item]


def _status(route: Route, by_name: dict[str, Route], ok: dict[str, bool], down: Down,
            gateway_ok: bool | None) -> ModelStatus:
    state, hops, why = _path(route.name, by_name, ok, down, frozenset())
    via = ""
    if state is False:
        for fallback in route.fallbacks:
            fb_state, fb_hops, _ = _path(fallback, by_name, ok, down, frozenset())
            if fb_state:
                state, via = True, f"fallback {fallback}: " + " -> ".join(fb_hops)
                break
        else:
            if why is not None:
                return ModelStatus(route.name, "down", f"{why} ({' -> '.join(hops)})")
            dead = next((h for h in hops if ok.get(h) is False), hops[-1])
            return ModelStatus(route.name, "down", f"{dead} is down ({' -> '.join(hops)})")
    if state is None or gateway_ok is None:
        return ModelStatus(route.name, "unknown", " -> ".join(hops) + " (not probed)")
    return ModelStatus(route.name, "fallback", via) if via else ModelStatus(route.name, "up", " -> ".join(hops))


def model_status(repo: Repo, results: list[Result]) -> list[ModelStatus]:
    """One row per public name (backend models, then aliases), in contract order."""
    ok = {r.service: r.ok for r in results}
    down = {r.service: r.models_down for r in results if r.models_down}
    by_name = {r.name: r for r in routes(repo)}
    gateway = repo.mesh.gateway.service
    gateway_ok = ok.get(gateway)
    if gateway_ok is False:
        return [ModelStatus(name, "down", f"gateway {gateway} is down") for name in by_name]
    return [_status(route, by_name, ok, down, gateway_ok) for route in by_name.values()]
