"""Idle client connections outlive the clients' own pools (httpx and so the openai SDK: 5 s), so a
client never sends on a connection the gateway is closing at that very moment."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import procs


def test_idle_connection_is_still_open_after_the_client_pool_expiry(gateway: procs.Proc) -> None:
    u = urlsplit(gateway.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", "/health/liveliness")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        sock = conn.sock
        time.sleep(6.5)  # longer than httpx's and uvicorn's 5 s defaults
        conn.request("GET", "/health/liveliness")
        again = conn.getresponse()
        again.read()
        assert again.status == 200
        assert conn.sock is sock, "the gateway closed the idle connection"
    finally:
        conn.close()
