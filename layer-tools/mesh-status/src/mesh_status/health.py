"""Live health: probe each service's contract health path, all at once."""

from __future__ import annotations

import os
import time
from typing import Any

import anyio
import httpx

from mesh_status.contracts import Mesh, Service


def probe_targets(mesh: Mesh) -> list[Service]:
    return [s for s in mesh.services.values() if s.get("health") and mesh.base_url(s)]


async def probe(client: httpx.AsyncClient, mesh: Mesh, svc: Service) -> dict[str, Any]:
    health = svc.get("health") or {}
    url = f"{mesh.base_url(svc)}{health.get('path', '/health')}"
    expect_status = int(health.get("expect_status", 200))
    expect_body = str(health.get("expect_body", "") or "")
    headers = {}
    if health.get("auth_env") and os.environ.get(health["auth_env"]):
        headers["Authorization"] = f"Bearer {os.environ[health['auth_env']]}"
    row: dict[str, Any] = {"service": svc.name, "url": url, "healthy": False, "status": None,
                           "latency_ms": None, "error": None, "required": bool(health.get("required", True))}
    start = time.perf_counter()
    try:
        r = await client.get(url, headers=headers, timeout=float(health.get("timeout_s", 3.0)))
        row["status"] = r.status_code
        row["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        if r.status_code != expect_status:
            row["error"] = f"expected status {expect_status}, got {r.status_code}"
        elif expect_body and expect_body not in r.text:
            row["error"] = f"body does not contain {expect_body!r}"
        else:
            row["healthy"] = True
    except httpx.TimeoutException:
        row["error"] = f"timeout after {health.get('timeout_s', 3.0)} s"
    except httpx.HTTPError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return row


async def check(mesh: Mesh, services: list[Service]) -> list[dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    # trust_env=False: probes go straight to the mesh addresses, never through a proxy.
    async with httpx.AsyncClient(trust_env=False) as client:
        async def one(svc: Service) -> None:
            results[svc.name] = await probe(client, mesh, svc)

        async with anyio.create_task_group() as tg:
            for svc in services:
                tg.start_soon(one, svc)
    return [results[s.name] for s in services]
