"""The ASGI app each gateway worker serves: LiteLLM's proxy app inside the gateway middleware.

uvicorn calls `create_app()` in every worker (`factory=True`), after the launcher (`serve.py`)
has put the config path in the environment the way LiteLLM's own CLI does.
"""

from __future__ import annotations

from meshkit import requestid

from .lifetime import bind_worker_to_master
from .metrics import CountingMiddleware, GatewayMetrics, install_logging
from .middleware import GatewayMiddleware
from .settings import GatewaySettings


def create_app() -> requestid.ASGIMiddleware:
    bind_worker_to_master()  # first: a worker must not outlive its master, even during start-up
    settings = GatewaySettings.from_env()
    from litellm.proxy.proxy_server import app  # heavy import: only in the process that serves

    from .gc_safety import install

    install()  # before any request: see gc_safety.py (a worker segfault in contextvars)
    install_logging()
    metrics = GatewayMetrics()
    # Outside in: the request id (held for the whole request, back as a header), counting, the
    # gateway's checks, LiteLLM.
    return requestid.ASGIMiddleware(CountingMiddleware(GatewayMiddleware(app, settings, metrics.page), metrics))
