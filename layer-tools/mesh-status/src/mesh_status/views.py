"""Pure views over a loaded mesh: the logical models and the topology."""

from __future__ import annotations

from typing import Any

from mesh_status.contracts import Mesh


def list_models(mesh: Mesh) -> list[dict[str, Any]]:
    """Every public model name: backend models, then optimizer aliases (approach over a model)."""
    rows: list[dict[str, Any]] = []
    for svc in mesh.services.values():
        common = {"service": svc.name, "host": svc.get("host"), "address": mesh.address(svc),
                  "port": svc.get("port")}
        for model in svc.get("models") or []:
            rows.append({"name": model["name"], "kind": "model", **common,
                         "upstream_id": model.get("upstream_id", model["name"]),
                         "fallbacks": list(model.get("fallbacks") or [])})
        for alias in svc.get("aliases") or []:
            rows.append({"name": alias["name"], "kind": "alias", **common,
                         # OptiLLM reads the approach from the model-name prefix.
                         "upstream_id": f"{alias['approach']}-{alias['target']}",
                         "approach": alias["approach"], "target": alias["target"]})
    return sorted(rows, key=lambda r: (r["kind"] != "model", r["name"]))


def topology(mesh: Mesh) -> dict[str, Any]:
    hosts = [{"name": h.get("name"), "address": h.get("address"), "role": h.get("role")}
             for h in mesh.mesh.get("hosts", [])]
    services = []
    for svc in mesh.services.values():
        services.append({
            "name": svc.name, "kind": svc.get("kind"), "layer": svc.get("layer"), "host": svc.get("host"),
            "bind": svc.get("bind"), "port": svc.get("port"), "exposure": svc.get("exposure", "localhost"),
            "url": mesh.base_url(svc), "upstreams": list(svc.get("upstreams") or []),
            "autostart": (svc.get("run") or {}).get("autostart", True),
        })
    return {"mesh": mesh.mesh.get("name"), "gateway": mesh.mesh.get("gateway"), "hosts": hosts,
            "services": sorted(services, key=lambda s: s["name"])}
