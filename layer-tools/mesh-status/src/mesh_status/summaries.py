"""One plain-language paragraph per tool result, written first in the tool's text content.

Why: a small local model (a 135M one serves jerry-chat) cannot read a JSON array and answer from
it; it repeats what it was shown. So each result starts with sentences that already answer the
questions the tool is for ("jerry-chat is up: served by ov-server on host local ..."); the
structured rows follow (structuredContent, and as JSON text for clients that read text only).
Pure functions over the rows the tools return: no I/O."""

from __future__ import annotations

from typing import Any

from meshkit.view import View


def _where(row: dict[str, Any]) -> str:
    place = f"{row['address']}:{row['port']}" if row.get("address") and row.get("port") else None
    host = f"host {row['host']}" if row.get("host") else "no declared host"
    return f"{host} at {place}" if place else host


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def gateway_name(view: View) -> str | None:
    return view.gateway_service or None


def models_summary(mesh: View, models: list[dict[str, Any]]) -> str:
    gateway = gateway_name(mesh)
    served = [m for m in models if m["kind"] == "model"]
    aliases = [m for m in models if m["kind"] == "alias"]
    head = f"The gateway {gateway}" if gateway else "The gateway"
    if not models:
        return f"{head} serves no models: no contract declares one."
    parts = [f"{m['name']} (served by {m['service']} on {_where(m)})" for m in served]
    parts += [f"{a['name']} ({a['approach']} over {a['target']}, via {a['service']} on {_where(a)})" for a in aliases]
    return f"{head} serves {_count(len(models), 'model')}: {'; '.join(parts)}."


def _health_phrase(row: dict[str, Any]) -> str:
    if row["healthy"]:
        return f"up ({row['url']} answered {row['status']} in {row['latency_ms']} ms)"
    optional = "" if row.get("required", True) else " (optional)"
    return f"DOWN{optional} ({row['url']}: {row['error']})"


def _service_label(mesh: View, name: str, models_of: dict[str, list[str]]) -> str:
    svc = mesh.services.get(name)
    bits = []
    if name == gateway_name(mesh):
        bits.append("the gateway")
    if models_of.get(name):
        bits.append("serves " + ", ".join(models_of[name]))
    if svc is not None and svc.host:
        bits.append(f"host {svc.host}")
    if svc is not None and svc.is_external:
        # Said in words: "down" then means "start it where it runs", not "the mesh lost it".
        bits.append("external, not run by the mesh")
    return f"{name} ({', '.join(bits)})" if bits else name


def health_summary(mesh: View, rows: list[dict[str, Any]], asked: str | None, models: list[dict[str, Any]]) -> str:
    """`asked`: what the caller named (a model, a service, `gateway`), None for every service."""
    models_of: dict[str, list[str]] = {}
    for m in models:
        models_of.setdefault(m["service"], []).append(m["name"])
    if not rows:
        return "No service declares an HTTP health endpoint, so nothing was probed."
    if asked is not None and len(rows) == 1:
        row = rows[0]
        state = "up" if row["healthy"] else "DOWN"
        label = _service_label(mesh, row["service"], models_of)
        if asked != row["service"]:  # a model name or `gateway`: say which service answered for it
            subject = "The gateway" if asked == "gateway" else asked
            return f"{subject} is {state}: it is {label}, which is {_health_phrase(row)}."
        return f"{label} is {_health_phrase(row)}."
    down = [r for r in rows if not r["healthy"]]
    listed = "; ".join(f"{_service_label(mesh, r['service'], models_of)} is {_health_phrase(r)}" for r in rows)
    if not down:
        head = f"All {_count(len(rows), 'service')} are up" if len(rows) > 1 else "The only service is up"
    else:
        head = f"{len(down)} of {_count(len(rows), 'service')} DOWN"
    return f"{head}: {listed}."


def topology_summary(topo: dict[str, Any]) -> str:
    hosts = topo["hosts"]
    host_text = "; ".join(f"{h['name']} (address {h['address']}, role {h['role']})" for h in hosts)
    gateway = topo.get("gateway") or {}
    gw_text = (f" The gateway is the service {gateway['service']}"
               + (f", reached at {gateway['public_base_url']}" if gateway.get("public_base_url") else "") + "."
               if isinstance(gateway, dict) and gateway.get("service") else "")
    services = "; ".join(
        f"{s['name']} ({s['kind']}, host {s['host']}" + (f", {s['url']}" if s.get("url") else "") + ")"
        for s in topo["services"])
    return (f"The mesh is named {topo['mesh']}. It has {_count(len(hosts), 'host')}: {host_text or 'none'}."
            f"{gw_text} {_count(len(topo['services']), 'service')}: {services or 'none'}.")
