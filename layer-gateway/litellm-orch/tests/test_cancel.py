"""A client that gives up cancels the generation behind the gateway, non-streamed too (issue 10).

End to end with the real ov-server (deployment `jerry-direct`, no test double in between): the
generation is seen running at ov-server before the client gives up, then it must stop long before
the requested 8,000 tokens. ov-server's /health counts generated tokens per step, so the count is
what the engine really did. Both kinds are tested: non-streamed is what LiteLLM never cancelled;
streams it cancels itself, and the gateway must not get in its way (ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import socket

import pytest

from meshkit.testing import ServerProcess, wait_until
from conftest import ov_stats

MAX_TOKENS = 8000


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_client_that_gives_up_cancels_the_generation(gateway: ServerProcess, ov_server: ServerProcess,
                                                     keys: dict[str, str], stream: bool) -> None:
    wait_until(lambda: ov_stats(ov_server)["active_requests"] == 0, "ov-server to be idle", interval=0.05)
    before = ov_stats(ov_server)["generated_tokens"]
    body = json.dumps({"model": "jerry-direct", "messages": [{"role": "user", "content": "write a lot"}],
                       "max_tokens": MAX_TOKENS, "ignore_eos": True, "stream": stream}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {keys['master']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head + body)
        # Give up only once the engine generates for this request (else the test proves nothing).
        # (ov-server counts a request as active once its engine has admitted it; /health can be slow
        # to answer while the engine generates, so the earliest sign is the one to wait for.)
        wait_until(lambda: ov_stats(ov_server)["active_requests"] > 0, "the request to reach the engine", interval=0.05)
        sock.shutdown(socket.SHUT_RDWR)  # the client goes away
    wait_until(lambda: ov_stats(ov_server)["active_requests"] == 0, "the generation to stop", 60, interval=0.05)
    generated = ov_stats(ov_server)["generated_tokens"] - before
    print(f"\n{'streamed' if stream else 'non-streamed'}: generation stopped after {generated} of {MAX_TOKENS} tokens")
    assert generated < MAX_TOKENS, "the generation ran to max_tokens after the client had gone"
