"""meshkit.requestid: the id a request keeps, what is accepted, and the log field."""

from __future__ import annotations

import asyncio
import io
import logging

from meshkit import requestid


def _call(headers: list[tuple[bytes, bytes]]) -> tuple[list[dict], list[str | None]]:
    seen: list[str | None] = []
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append(requestid.current.get())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"spoofed")]})
        seen.append(requestid.current.get())  # still set while the body streams
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message) -> None:  # type: ignore[no-untyped-def]
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    asyncio.run(requestid.ASGIMiddleware(app)({"type": "http", "headers": headers}, receive, send))
    return sent, seen


def test_a_plain_client_id_is_kept_and_returned_once() -> None:
    sent, seen = _call([(b"x-request-id", b"client-1:a.b_c")])
    assert seen == ["client-1:a.b_c", "client-1:a.b_c"]
    ids = [v for k, v in sent[0]["headers"] if k == b"x-request-id"]
    assert ids == [b"client-1:a.b_c"]  # the app's own header is replaced, not doubled
    assert requestid.current.get() is None  # reset after the request


def test_missing_or_unsafe_ids_are_replaced() -> None:
    for headers in ([], [(b"x-request-id", b"a b")], [(b"x-request-id", b"x\r\ninjected: 1")],
                    [(b"x-request-id", b"a" * 129)], [(b"x-request-id", b"")]):
        _, seen = _call(headers)
        assert seen[0] is not None and seen[0].startswith("req-") and requestid.valid(seen[0])


def test_log_lines_carry_the_id_in_brackets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(requestid.RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(name)s [%(rid)s] %(message)s"))
    log = logging.getLogger("meshkit-test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("outside")
        token = requestid.current.set("r-1")
        log.info("inside")
        requestid.current.reset(token)
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["meshkit-test [rid=-] outside", "meshkit-test [rid=r-1] inside"]


def test_content_logging_is_off_unless_asked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HOMELAB_LOG_CONTENT", raising=False)
    assert not requestid.content_logging()
    monkeypatch.setenv("HOMELAB_LOG_CONTENT", "1")
    assert requestid.content_logging()
