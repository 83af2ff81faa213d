"""Who may drive the agent over HTTP: checks run before any route, in this order.

1. `Host` must name loopback (421 otherwise): a DNS-rebinding page reaches 127.0.0.1 under its
   own host name, so a foreign Host means a browser was tricked into calling us.
2. `Origin`, when present, must be a loopback origin (403): a cross-site page in the user's
   browser always sends its own.
3. Every route but `GET /health` needs `Authorization: Bearer <TINYAGENTS_SERVE_KEY>` (401):
   the agent calls the gateway with the mesh's key, so anyone who can drive it spends that key.

Same Host/Origin policy as the MCP SDK applies to the tool servers on loopback. Errors are in
OpenAI's shape, like every other answer of this service."""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
OPEN_ROUTES = frozenset({("GET", "/health")})


def error_response(status: int, message: str, *, type_: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status, headers=headers)


LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


def host_is_loopback(host: str | None) -> bool:
    return bool(host) and LOOPBACK_HOST.fullmatch(host.strip()) is not None


def origin_is_loopback(origin: str) -> bool:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        return False
    host = parts.hostname or ""
    name = f"[{host}]" if ":" in host else host
    return parts.scheme in ("http", "https") and name in LOOPBACK_NAMES and port != 0 and not parts.path.strip("/")


def key_matches(authorization: str | None, key: str) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


class GuardMiddleware:
    """Pure ASGI middleware: nothing of a refused request reaches the app, its body is never read."""

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        if not key:
            raise ValueError("GuardMiddleware needs a key")
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope["method"], scope["path"], headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, path: str, headers: Headers) -> JSONResponse | None:
        if not host_is_loopback(headers.get("host")):
            return error_response(421, "Host header must be 127.0.0.1, localhost or [::1] (this service binds loopback)",
                                  param="Host", code="invalid_host")
        origin = headers.get("origin")
        if origin is not None and not origin_is_loopback(origin):
            return error_response(403, "cross-origin requests are refused: Origin must be a loopback origin",
                                  param="Origin", code="invalid_origin")
        if (method, path) in OPEN_ROUTES:
            return None
        if not key_matches(headers.get("authorization"), self.key):
            return error_response(401, "missing or wrong key: send `Authorization: Bearer $TINYAGENTS_SERVE_KEY`",
                                  param="Authorization", code="invalid_api_key",
                                  headers={"WWW-Authenticate": "Bearer"})
        return None
