"""The gateway's one rule for callers: the probes are open, everything else needs the master key.

Pure (no LiteLLM import), so the ASGI middleware can refuse a caller from the headers alone,
before any of the body is read, and LiteLLM's custom_auth (`auth.py`) applies the same rule.
"""

from __future__ import annotations

import os
import secrets

# Probes a load balancer or the mesh's health sweep hits without a key. Deliberately narrower
# than LiteLLM's own public route list (which also opens /config/yaml, /routes, model hubs).
OPEN_ROUTES = frozenset({"/health/liveliness", "/health/liveness", "/health/readiness"})


def master_key() -> str:
    return os.environ.get("LITELLM_MASTER_KEY", "")


def presented_key(value: str | None) -> str:
    """The key in an Authorization value ("Bearer k") or a bare key."""
    key = (value or "").strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    return key


def key_problem(presented: str | None) -> str | None:
    """Why a caller presenting `presented` is refused (the 401 message), or None to let it in."""
    master = master_key()
    if not master:
        # Misconfiguration must not turn into an open gateway.
        return "Gateway has no LITELLM_MASTER_KEY configured; refusing all requests."
    key = presented_key(presented)
    if not key:
        return "Missing API key: send 'Authorization: Bearer <LITELLM_MASTER_KEY>'."
    if not secrets.compare_digest(key.encode(), master.encode()):
        return "Invalid API key: send the gateway's key (LITELLM_MASTER_KEY) as 'Authorization: Bearer <key>'."
    return None
