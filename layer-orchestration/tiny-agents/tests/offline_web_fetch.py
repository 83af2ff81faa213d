"""The real web-fetch MCP server (stdio) with its network cut: run with web-fetch's own interpreter.

The agent sees web-fetch's real tool (name, description, schema, as the contract serves it) and
each fetch ends in web-fetch's own error path, but nothing leaves the machine: the resolver
resolves no name and the connection backend refuses every connection (IP literals included).
Used by the real-model bench and test with the default servers, where a small model may call
`fetch` with an invented URL."""

from __future__ import annotations

import httpcore
from web_fetch.config import from_env
from web_fetch.fetcher import make_client
from web_fetch.server import build_server, make_pool


async def no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"no network in this mesh ({host} not resolved)")


class NoNetwork(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        raise httpcore.ConnectError(f"no network in this mesh ({host}:{port} not contacted)")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("no network in this mesh")

    async def sleep(self, seconds: float) -> None:
        return None


def main() -> None:
    settings = from_env()
    pool = make_pool(settings)
    try:
        build_server(settings, client_factory=lambda: make_client(settings, resolver=no_dns, inner=NoNetwork()),
                     pool=pool).run("stdio")
    finally:
        pool.kill_all()


if __name__ == "__main__":
    main()
