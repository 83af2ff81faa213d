"""The one health probe: `homelab up`, `homelab health`/`status` and mesh-status all call this, so
a failure reads the same everywhere (WORDS below). Standard library only (http.client, threads).

A sweep probes every target at once (one thread each), so it takes about as long as the slowest
probe, not the sum.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

MAX_BODY = 256 * 1024  # a health body is small; never read an unbounded one

# Every way a probe fails, worded once.
WORDS = {
    "refused": "connection refused by {where}",
    "unreachable": "cannot connect to {where}: {why}",
    "timeout": "timed out after {seconds:g} s",
    "status": "expected HTTP {expected}, got {got}",
    "body": "body does not contain {expected!r}",
    "protocol": "not an HTTP answer from {where}: {why}",
    "url": "not an http(s) URL: {url!r}",
}


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

    @property
    def problem(self) -> str | None:
        """The sentence every tool prints for a failed probe: `URL: why`."""
        return None if self.ok else f"{self.url}: {self.error}"


def models_down(body: object) -> dict[str, str]:
    """{model: why} for every model a health body reports in a state other than "ok"."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, dict):
        return {}
    return {str(name): str(m.get("error") or m.get("state")) for name, m in models.items()
            if isinstance(m, dict) and "state" in m and m["state"] != "ok"}


def _get(url: str, headers: dict[str, str], timeout_s: float) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(WORDS["url"].format(url=url))
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read(MAX_BODY)
    finally:
        conn.close()


def probe(target: Target) -> Result:
    """One GET with no proxy and no redirects; never raises for a failed probe."""
    start = time.perf_counter()
    parts = urlsplit(target.url)
    where = parts.netloc or target.url
    status: int | None = None
    down: dict[str, str] = {}
    error: str | None = None
    try:
        status, ctype, body = _get(target.url, target.headers, target.timeout_s)
        if time.perf_counter() - start > target.timeout_s:
            error = WORDS["timeout"].format(seconds=target.timeout_s)
        elif status != target.expect_status:
            error = WORDS["status"].format(expected=target.expect_status, got=status)
        elif target.expect_body and target.expect_body not in body.decode("utf-8", "replace"):
            error = WORDS["body"].format(expected=target.expect_body)
        elif ctype.startswith("application/json"):
            try:
                down = models_down(json.loads(body))
            except ValueError:
                pass
    except ValueError as exc:  # a bad URL (ours, above, or http.client's)
        error = str(exc) if str(exc).startswith("not an http") else WORDS["url"].format(url=target.url)
    except TimeoutError:
        error = WORDS["timeout"].format(seconds=target.timeout_s)
    except ConnectionRefusedError:
        error = WORDS["refused"].format(where=where)
    except http.client.HTTPException as exc:
        error = WORDS["protocol"].format(where=where, why=type(exc).__name__)
    except OSError as exc:  # unroutable, DNS, reset, TLS
        error = WORDS["unreachable"].format(where=where, why=exc.strerror or exc)
    latency = round((time.perf_counter() - start) * 1000, 1)
    return Result(target.service, target.url, error is None, status, latency, error,
                  target.required, target.host, down)


def probe_all(targets: list[Target]) -> list[Result]:
    """Probe every target concurrently; results in the targets' order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(len(targets), 64)) as pool:
        return list(pool.map(probe, targets))


def failed_required(results: list[Result]) -> list[Result]:
    return [r for r in results if r.required and not r.ok]
