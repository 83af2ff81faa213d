"""A free TCP port for a test server."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick; another process may still take it
    before the caller binds it, which is why servers that can bind port 0 themselves should)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
