"""Live health: probe each service's health URL from the mesh view, all at once, with meshkit's
probe (the one `homelab up` and `homelab health` use, so a failure reads the same)."""

from __future__ import annotations

import os
from typing import Any

import anyio.to_thread
from meshkit.probe import Result, probe_all
from meshkit.view import Service, View


def probe_targets(view: View) -> list[Service]:
    return [s for s in view.services.values() if s.health is not None]


def row(result: Result) -> dict[str, Any]:
    return {"service": result.service, "url": result.url, "healthy": result.ok,
            "status": result.status, "latency_ms": result.latency_ms, "error": result.error,
            "required": result.required}


async def check(services: list[Service]) -> list[dict[str, Any]]:
    """Rows in the services' order; auth_env tokens come from this process's environment."""
    env = dict(os.environ)
    targets = [s.health.target(s, env=env) for s in services if s.health is not None]
    # meshkit's probe is blocking (standard library, one thread per target): off the event loop.
    results = await anyio.to_thread.run_sync(probe_all, targets)
    return [row(r) for r in results]
