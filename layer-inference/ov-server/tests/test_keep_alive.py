"""Idle keep-alive connections outlive the gateway's pool (5 s), so a reused connection is never one
the server is closing at that moment (seen as occasional 503 'backend does not answer')."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit


def test_idle_connection_is_still_open_after_the_client_pool_expiry(server):
    u = urlsplit(server.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", "/v1/models")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        sock = conn.sock
        time.sleep(6.5)  # longer than httpx/aiohttp/uvicorn's 5 s defaults
        conn.request("GET", "/v1/models")
        again = conn.getresponse()
        again.read()
        assert again.status == 200
        assert conn.sock is sock, "the server closed the idle connection"
    finally:
        conn.close()
