"""One sweep of the mesh for `homelab top`: every health probe and every /metrics at once.

The only I/O of the observe package; figures are computed by stats.py from what this returns.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from meshkit.probe import WORDS

from homelab.addresses import base_url
from homelab.load.repo import Repo
from homelab.observe.exposition import ExpositionError, Samples, parse
from homelab.runtime import probe


@dataclass(frozen=True)
class MetricsTarget:
    service: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Scrape:
    service: str
    url: str
    samples: Samples | None  # None: the scrape failed (see error)
    error: str | None
    at: float  # time.monotonic() when the answer arrived


@dataclass(frozen=True)
class Sweep:
    health: list[probe.Result]
    scrapes: dict[str, Scrape]


def metrics_targets(repo: Repo, *, local_host: str | None, env: dict[str, dict[str, str]],
                    host: str | None = None) -> list[MetricsTarget]:
    """Every service declaring `metrics`, on its reach address (loopback for this host's
    wildcard-bound services), with its bearer key from its own environment when it needs one."""
    out = []
    for svc in sorted(repo.services.values(), key=lambda s: s.name):
        metrics = svc.spec.metrics
        if metrics is None or (host and svc.spec.host != host):
            continue
        url = base_url(repo, svc, local=svc.spec.host == local_host)
        if url is None:
            continue
        headers = {}
        if metrics.auth_env and (token := env.get(svc.name, {}).get(metrics.auth_env)):
            headers["Authorization"] = f"Bearer {token}"
        out.append(MetricsTarget(svc.name, url + metrics.path, headers))
    return out


async def _scrape(client: httpx.AsyncClient, target: MetricsTarget, timeout_s: float) -> Scrape:
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.get(target.url, headers=target.headers, timeout=timeout_s)
        if response.status_code != 200:
            return Scrape(target.service, target.url, None, f"HTTP {response.status_code}",
                          time.monotonic())
        return Scrape(target.service, target.url, parse(response.text), None, time.monotonic())
    except TimeoutError:
        error = "timed out"
    except httpx.HTTPError as exc:
        error = _describe(exc, target.url)
    except ExpositionError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Scrape(target.service, target.url, None, error, time.monotonic())


def _describe(exc: httpx.HTTPError, url: str) -> str:
    """A failed scrape in meshkit.probe's words (what `homelab health` prints for the same cause)."""
    where = httpx.URL(url).netloc.decode() or url
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return WORDS["refused"].format(where=where)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return WORDS["unreachable"].format(where=where, why=exc)
    return WORDS["protocol"].format(where=where, why=type(exc).__name__)


async def _sweep(health: list[probe.Target], metrics: list[MetricsTarget],
                 timeout_s: float) -> Sweep:
    limits = httpx.Limits(max_connections=len(metrics) + 10, max_keepalive_connections=0)
    # Mesh URLs are plain http: load the CA bundle only when some target really is https.
    verify = any(t.url.startswith("https:") for t in metrics)
    async with httpx.AsyncClient(trust_env=False, limits=limits, follow_redirects=False,
                                 verify=verify) as client:
        # The health probes are meshkit's (blocking, one thread each): beside the scrapes.
        probes, *scraped = await asyncio.gather(
            asyncio.to_thread(probe.probe_all, health),
            *(_scrape(client, t, timeout_s) for t in metrics))
    return Sweep(probes, {r.service: r for r in scraped})


def sweep(health: list[probe.Target], metrics: list[MetricsTarget], timeout_s: float = 2.0) -> Sweep:
    """Probe every health target and scrape every metrics target concurrently."""
    return asyncio.run(_sweep(health, metrics, timeout_s))
