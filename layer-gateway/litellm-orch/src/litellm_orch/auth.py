"""Master-key-only client auth for the gateway, plugged in via `general_settings.custom_auth`.

Why: offline there is no database, so stock LiteLLM answers a WRONG key with 400
`no_db_connection`. This function runs before LiteLLM's own checks and applies the rule of
`keys.py` (probes open, master key for everything else, 401 otherwise). The gateway's middleware
already refused such callers from the headers; this is the same check where LiteLLM expects it.
It also skips LiteLLM's virtual-key machinery, which is part of the per-request overhead.
"""

from __future__ import annotations

from fastapi import Request, status
from litellm.constants import LITELLM_PROXY_MASTER_KEY_ALIAS
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

from .keys import OPEN_ROUTES, key_problem

# What LiteLLM records as the caller's key (logs, metrics labels): never the key itself.
MASTER_KEY_ALIAS = LITELLM_PROXY_MASTER_KEY_ALIAS


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
    problem = key_problem(api_key)
    if problem:
        raise _unauthorized(problem)
    return UserAPIKeyAuth(
        api_key=MASTER_KEY_ALIAS,
        user_id="homelab-admin",
        user_role=LitellmUserRoles.PROXY_ADMIN,
    )
