"""Gateway metrics, counted at our ASGI layer and summed over every uvicorn worker.

LiteLLM's own `prometheus` callback is not used: with more than one worker it switches to
prometheus_client's multiprocess mode and the gateway then did not come up within 120 s here
(ARCHITECTURE.md, Metrics); its sidecar metrics server needs a second port. So each worker counts
here, into files under `PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode: one
mmap'ed file per worker and metric kind), and `GET /metrics` on any worker reads every worker's
files. The launcher (`serve.py`) prepares the directory before the workers start: the
`LITELLM_ORCH_METRICS_DIR` folder (`homelab up`: under the mesh's state folder), emptied at every
start, or a fresh temporary one.

The names are a contract with the mesh's Prometheus scrape, Grafana dashboard and `homelab top`:
- `gateway_requests_total{model,status}`: every request but the open probes and /metrics; `model`
  is the chat request's (a configured name: unknown ones are refused before they are counted as
  such) or `none` (model list, refused keys, bad bodies); `status` the HTTP status, `499` when the
  client left before the status line;
- `gateway_request_duration_seconds{model}`: arrival to the last byte;
- `gateway_time_to_first_token_seconds{model}`: streams only, arrival to the first chunk that
  carries generated text or a tool call (not the empty role chunk some backends send first);
- `gateway_in_flight_requests`: requests being answered now (live workers summed).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from meshkit import requestid

from . import keys

DIR_ENV = "LITELLM_ORCH_METRICS_DIR"
MODEL_KEY = "homelab.model"  # scope key: the chat model, set by GatewayMiddleware once checked
METRICS_PATHS = frozenset({"/metrics", "/metrics/"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# A chunk with generated text or a tool call; LiteLLM's first chunk may carry an empty role delta.
_FIRST_TOKEN = re.compile(rb'"(?:content|reasoning_content)":\s?"[^"]|"tool_calls":\s?\[')

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("litellm_orch.requests")


def prepare_dir() -> str:
    """In the launcher, before any worker starts: an empty multiprocess directory, exported.

    Stale files of an earlier run would be summed into this one's counters, so the folder is
    emptied (only the `*.db` files prometheus_client writes; anything else there is refused)."""
    wanted = os.environ.get(DIR_ENV)
    if wanted:
        path = Path(wanted)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        _remove_orphans(Path(tempfile.gettempdir()))
        path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


TEMP_PREFIX = "litellm-orch-metrics-"


def _remove_orphans(tmp: Path) -> None:
    """Folders of launchers that died without cleaning up (SIGKILL): their pid is in the name."""
    for folder in tmp.glob(TEMP_PREFIX + "*-*"):
        pid = folder.name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path("/proc", pid).exists():
            shutil.rmtree(folder, ignore_errors=True)


def remove_dir(path: str) -> None:
    """At exit, a directory the launcher made itself (never the operator's)."""
    if not os.environ.get(DIR_ENV):
        shutil.rmtree(path, ignore_errors=True)


class GatewayMetrics:
    """One worker's metrics (multiprocess mode: PROMETHEUS_MULTIPROC_DIR must be set already)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("gateway_requests", "Requests by model and HTTP status", ["model", "status"])
        self.duration = Histogram("gateway_request_duration_seconds", "Arrival to the last byte", ["model"],
                                  buckets=DURATION_BUCKETS)
        self.ttft = Histogram("gateway_time_to_first_token_seconds",
                              "Streams: arrival to the first chunk with generated text or a tool call", ["model"],
                              buckets=TTFT_BUCKETS)
        self.in_flight = Gauge("gateway_in_flight_requests", "Requests being answered now",
                               multiprocess_mode="livesum")

    def page(self) -> bytes:
        """Every worker's samples, summed (what `GET /metrics` returns)."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


async def send_page(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class CountingMiddleware:
    """Outermost but for the request id: counts every request, logs one line per chat request."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in keys.OPEN_ROUTES or path in METRICS_PATHS:
            await self.app(scope, receive, send)
            return
        m = self.metrics
        t0 = time.monotonic()
        status = 499  # nothing was sent: the client left first
        stream = False
        first: float | None = None
        scope[MODEL_KEY] = "none"

        async def counting_send(message: Message) -> None:
            nonlocal status, stream, first
            if message["type"] == "http.response.start":
                status = message["status"]
                stream = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                             for k, v in message.get("headers", ()))
            elif stream and first is None and _FIRST_TOKEN.search(message.get("body", b"")):
                first = time.monotonic()
            await send(message)

        m.in_flight.inc()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            m.in_flight.dec()
            seconds = time.monotonic() - t0
            model = scope[MODEL_KEY]
            m.requests.labels(model, str(status)).inc()
            m.duration.labels(model).observe(seconds)
            ttft = None
            if first is not None:
                ttft = first - t0
                m.ttft.labels(model).observe(ttft)
            if model != "none":
                log.info("chat model=%s status=%d stream=%s ttft=%s duration=%.3fs", model, status, stream,
                         f"{ttft:.3f}s" if ttft is not None else "-", seconds)
            elif status >= 400:
                log.info("%s %s status=%d duration=%.3fs", scope.get("method"), path, status, seconds)


def install_logging() -> None:
    """Every line of the worker names its request (`rid=`): our handlers and LiteLLM's own."""
    requestid.install()  # the root's level stays (WARNING): httpx & co. do not start logging
    logging.getLogger("litellm_orch").setLevel(logging.INFO)  # one line per request (ours)
    for name in ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(requestid.RequestIdFilter())
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(rid)s] %(message)s"))
