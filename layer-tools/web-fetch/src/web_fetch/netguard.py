"""An httpcore network backend that resolves, checks and then connects to the checked address.

Every TCP connection httpx opens (the first request and every redirect) goes through
`connect_tcp`, so no code path can reach an address the guard has not seen.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore

from web_fetch.guard import AllowList, IPAddress, Refused, check

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        allow: AllowList,
        *,
        resolver: Resolver = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow = allow
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolved addresses for host, all checked: one refused address refuses the host,
        so a name cannot mix a public and a private answer to slip through."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            ips: list[IPAddress] = [literal]
        except ValueError:
            try:
                ips = [ipaddress.ip_address(a.split("%")[0]) for a in await self._resolve(host, port)]
            except OSError as exc:
                raise Refused(f"DNS lookup failed for {host}: {exc}") from None
            if not ips:
                raise Refused(f"DNS lookup for {host} returned no address") from None
        for ip in ips:
            check(host, ip, self._allow)
        return ips

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for ip in await self.addresses(host, port):
            try:
                # Connect to the checked IP, not the name: no second DNS answer is trusted.
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # type: ignore[override]
        raise Refused("unix sockets are not fetchable")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
