"""Master-key-only client auth for the gateway, plugged in via `general_settings.custom_auth`.

Why: offline there is no database, so stock LiteLLM answers a WRONG key with 400
`no_db_connection`. This function runs before LiteLLM's own checks and makes the rule simple:
the probes below are open, every other route needs exactly the master key, anything else is 401.
It also skips LiteLLM's virtual-key machinery, which is part of the per-request overhead.
"""

from __future__ import annotations

import os
import secrets

from fastapi import Request, status
from litellm.constants import LITELLM_PROXY_MASTER_KEY_ALIAS
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

# Probes a load balancer or the mesh's health sweep hits without a key. Deliberately narrower
# than LiteLLM's own public route list (which also opens /config/yaml, /routes, model hubs).
OPEN_ROUTES = frozenset({"/health/liveliness", "/health/liveness", "/health/readiness"})

# What LiteLLM records as the caller's key (logs, metrics labels): never the key itself.
MASTER_KEY_ALIAS = LITELLM_PROXY_MASTER_KEY_ALIAS


def _master_key() -> str:
    return os.environ.get("LITELLM_MASTER_KEY", "")


def _presented_key(api_key: str | None) -> str:
    key = (api_key or "").strip()
    # LiteLLM normally strips "Bearer " already; tolerate both shapes.
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    return key


def _unauthorized(message: str) -> ProxyException:
    return ProxyException(
        message=message,
        type=ProxyErrorTypes.auth_error,
        param="api_key",
        code=status.HTTP_401_UNAUTHORIZED,
    )


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """Return the proxy-admin identity for the master key; raise a 401 for anything else."""
    if request.url.path in OPEN_ROUTES:
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER_VIEW_ONLY)
    master = _master_key()
    if not master:
        # Misconfiguration must not turn into an open gateway.
        raise _unauthorized("Gateway has no LITELLM_MASTER_KEY configured; refusing all requests.")
    key = _presented_key(api_key)
    if not key:
        raise _unauthorized("Missing API key: send 'Authorization: Bearer <LITELLM_MASTER_KEY>'.")
    if not secrets.compare_digest(key.encode(), master.encode()):
        raise _unauthorized("Invalid API key.")
    return UserAPIKeyAuth(
        api_key=MASTER_KEY_ALIAS,
        user_id="homelab-admin",
        user_role=LitellmUserRoles.PROXY_ADMIN,
    )
