"""Pure views over the mesh view: the logical models and the topology."""

from __future__ import annotations

from typing import Any

from meshkit.view import View


def list_models(view: View) -> list[dict[str, Any]]:
    """Every public name the gateway serves: backend models, then optimizer aliases."""
    rows: list[dict[str, Any]] = []
    for route in view.routes:
        svc = view.services.get(route.service)
        row: dict[str, Any] = {"name": route.name, "kind": route.kind, "service": route.service,
                               "host": svc.host if svc else None,
                               "address": svc.address if svc else None,
                               "port": svc.port if svc else None, "upstream_id": route.upstream_id}
        if route.kind == "alias":
            row |= {"approach": route.approach, "target": route.target}
        else:
            row["fallbacks"] = list(route.fallbacks)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["kind"] != "model", r["name"]))


def topology(view: View) -> dict[str, Any]:
    hosts = [{"name": h.name, "address": h.address, "role": h.role} for h in view.hosts]
    services = [{"name": s.name, "kind": s.kind, "layer": s.layer, "host": s.host, "bind": s.bind,
                 "port": s.port, "exposure": s.exposure, "url": s.url,
                 "upstreams": list(s.upstreams), "autostart": s.autostart,
                 "managed": s.managed}
                for s in view.services.values()]
    return {"mesh": view.mesh,
            "gateway": {"service": view.gateway_service, "public_base_url": view.gateway_url},
            "hosts": hosts, "services": sorted(services, key=lambda s: s["name"])}
