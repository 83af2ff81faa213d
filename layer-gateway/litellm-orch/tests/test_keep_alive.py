"""Connections the gateway keeps, so a client never sends on one being closed under it:
- idle ones outlive the clients' own pools (httpx and so the openai SDK: 5 s);
- one whose request is refused before its body was read (no key, unserved endpoint): the body may
  still be on its way (httpx sends it in a segment after the headers); closing would make the
  kernel answer it with a reset, and the client could lose the answer (soak test, 1 run in 3).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from meshkit.testing import ServerProcess


def test_idle_connection_is_still_open_after_the_client_pool_expiry(gateway: ServerProcess) -> None:
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


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one content-length answer; b"" head if the connection ended first."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return b"", data
        data += more
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return head, body


@pytest.mark.parametrize("case", ["no key", "unserved endpoint"])
def test_refused_request_whose_body_arrives_after_the_answer_keeps_the_connection(
        gateway: ServerProcess, keys: dict[str, str], case: str) -> None:
    # The race's worst timing, made certain: the body is sent only once the answer is in.
    body = json.dumps({"model": "jerry-tiny", "input": "x" * 512}).encode()
    path, auth = ("/v1/chat/completions", "") if case == "no key" else \
        ("/v1/embeddings", f"Authorization: Bearer {keys['master']}\r\n")
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head)
        answer, _ = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 401" if case == "no key" else b"HTTP/1.1 404"), answer[:200]
        try:
            sock.sendall(body)
            time.sleep(0.2)  # a reset, if any, is back by now
            sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
            again, _ = _read_answer(sock)
        except OSError as exc:
            raise AssertionError(f"the gateway dropped the connection after its {answer[:12]!r}: {exc!r}") from None
        assert again.startswith(b"HTTP/1.1 200"), f"the connection ended after the refusal: {again[:200]!r}"
