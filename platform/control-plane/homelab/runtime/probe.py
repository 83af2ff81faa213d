"""Concurrent health probes: the mesh's endpoints checked at once, so a sweep takes about as long
as the slowest probe, not the sum. Pure-ish: targets in, results out; reusable by mesh-status.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field

import httpx

from homelab.addresses import health_url
from homelab.load.repo import Repo


@dataclass(frozen=True)
class Target:
    service: str
    url: str
    expect_status: int = 200
    expect_body: str = ""
    timeout_s: float = 3.0
    required: bool = True
    host: str = ""
    headers: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Result:
    service: str
    url: str
    ok: bool
    status: int | None
    latency_ms: float
    error: str | None
    required: bool
    host: str = ""
    # Models a healthy service reports as not serving, with why: from a JSON health body of the
    # form {"models": {id: {"state": "ok" | ..., "error": "..."}}} (ov-server's). A backend that
    # serves one model while another's engine is down stays up; its down model does not.
    models_down: dict[str, str] = field(default_factory=dict, hash=False)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def targets(repo: Repo, *, local_host: str | None = None, host: str | None = None,
            env: dict[str, dict[str, str]] | None = None,
            timeout_s: float | None = None) -> list[Target]:
    """One target per service with a health block (optionally only those on `host`).

    Services on `local_host` are probed on loopback when bound to a wildcard address. `env` maps
    a service name to its environment, used for `health.auth_env` bearer tokens.
    """
    out = []
    for svc in sorted(repo.services.values(), key=lambda s: s.name):
        health = svc.spec.health
        if health is None or (host and svc.spec.host != host):
            continue
        url = health_url(repo, svc, local=svc.spec.host == local_host)
        if url is None:
            continue
        headers = {}
        if health.auth_env:
            token = (env or {}).get(svc.name, {}).get(health.auth_env)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        out.append(Target(svc.name, url, health.expect_status, health.expect_body,
                          timeout_s or health.timeout_s, health.required, svc.spec.host, headers))
    return out


def models_down(body: object) -> dict[str, str]:
    """{model: why} for every model a health body reports in a state other than "ok"."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, dict):
        return {}
    return {str(name): str(m.get("error") or m.get("state")) for name, m in models.items()
            if isinstance(m, dict) and "state" in m and m["state"] != "ok"}


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:  # httpx hides the OSError: find ECONNREFUSED underneath
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            cause = cause.__cause__ or cause.__context__
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def probe_one(client: httpx.AsyncClient, target: Target) -> Result:
    start = time.perf_counter()
    status = None
    down: dict[str, str] = {}
    try:
        # asyncio.timeout bounds the whole probe; httpx's timeout alone is per phase.
        async with asyncio.timeout(target.timeout_s):
            response = await client.get(target.url, headers=target.headers,
                                        timeout=target.timeout_s)
        status = response.status_code
        if status != target.expect_status:
            error = f"expected HTTP {target.expect_status}, got {status}"
        elif target.expect_body and target.expect_body not in response.text:
            error = f"body does not contain {target.expect_body!r}"
        else:
            error = None
            if response.headers.get("content-type", "").startswith("application/json"):
                with contextlib.suppress(ValueError):
                    down = models_down(response.json())
    except TimeoutError:
        error = "timed out"
    except httpx.HTTPError as exc:
        error = _describe(exc)
    except OSError as exc:  # e.g. an unroutable address
        error = f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - start) * 1000
    return Result(target.service, target.url, error is None, status, round(latency, 1), error,
                  target.required, target.host, down)


async def probe_all_async(items: list[Target]) -> list[Result]:
    # trust_env=False: an HTTP(S)_PROXY in the environment must never see mesh traffic.
    limits = httpx.Limits(max_connections=max(len(items), 1) + 10, max_keepalive_connections=0)
    # Loading the CA bundle costs 15-50 ms per sweep; mesh health URLs are plain http, so only
    # pay for it when some target really is https.
    verify = any(t.url.startswith("https:") for t in items)
    async with httpx.AsyncClient(trust_env=False, limits=limits, follow_redirects=False,
                                 verify=verify) as client:
        return list(await asyncio.gather(*(probe_one(client, t) for t in items)))


def probe_all(items: list[Target]) -> list[Result]:
    """Probe every target concurrently; results in the targets' order."""
    if not items:
        return []
    return asyncio.run(probe_all_async(items))


def failed_required(results: list[Result]) -> list[Result]:
    return [r for r in results if r.required and not r.ok]
