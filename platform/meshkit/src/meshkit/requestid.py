"""One request id end to end: the `x-request-id` header every service reads, logs and sends on.

The gateway takes the client's id (or makes one) and forwards it; each service puts it in a
context variable for the time of the request, so every log line written meanwhile can carry it
(`RequestIdFilter`), sends it back as a response header and names it in error bodies. A
client's id is used only if it is short and plain (letters, digits, `-_.:`): it ends up in log
lines and headers, where anything else could forge lines or inject headers; otherwise the
service makes a new one and says nothing (the response header tells the client which id counts).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

HEADER = "x-request-id"
MAX_LEN = 128
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % MAX_LEN)

current: ContextVar[str | None] = ContextVar("homelab_request_id", default=None)


def new_id() -> str:
    return "req-" + uuid.uuid4().hex


def valid(value: str | None) -> bool:
    return value is not None and _VALID.fullmatch(value) is not None


def accept(value: str | None) -> str:
    """The client's id if it is acceptable, else a new one."""
    return value if valid(value) else new_id()  # type: ignore[return-value]


def log_field(rid: str | None = None) -> str:
    """How a log line names its request: `rid=ID` (`rid=-` outside any request)."""
    return f"rid={rid or current.get() or '-'}"


class RequestIdFilter(logging.Filter):
    """Adds `record.rid` (`rid=ID` or `rid=-`) so a format string can hold `%(rid)s`.

    Install it on the handlers (not the loggers): then lines of third-party loggers (uvicorn,
    litellm) get the field too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "rid"):
            record.rid = log_field()
        return True


def install(fmt: str = "%(asctime)s %(levelname)s %(name)s %(rid)s: %(message)s",
            level: int | str | None = None) -> None:
    """Give every root handler (one is created if there is none) the filter and `fmt`."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    if level is not None:
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter(fmt))


class ASGIMiddleware:
    """Pure ASGI middleware (no framework needed): takes the request's `x-request-id` (or makes
    one), holds it in `current` for the whole request (streams included: the response runs in
    this context) and sends it back as a response header. Non-HTTP scopes pass through."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope.get("headers") or ():
            if name == HEADER.encode():
                sent = value.decode("latin-1")
                break
        rid = accept(sent)
        token = current.set(rid)

        async def send_with_id(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if k.lower() != HEADER.encode()]
                headers.append((HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)


def content_logging() -> bool:
    """`HOMELAB_LOG_CONTENT=1`: services may log prompts and completions (debugging only; off by
    default, so logs hold ids, models, counts and timings, never what was said). Keys are never
    logged, with or without it."""
    import os

    return os.environ.get("HOMELAB_LOG_CONTENT", "").strip().lower() in ("1", "true", "yes", "on")
