"""The command line every MCP tool server of the mesh shares:

    NAME --transport stdio|streamable-http [--host H --port P]

Parsing, the `--host` check, the one-line `NAME: error: ...` for unusable input (exit 2, never a
traceback) and the choice of transport. What differs per server (its own settings, what it
cleans up) stays in the server's cli.py. Standard library only.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import dataclass
from typing import Any, Protocol

TRANSPORTS = ("stdio", "streamable-http")
DEFAULT_HOST = "127.0.0.1"  # loopback unless the contract binds elsewhere


class Server(Protocol):
    """What the MCP SDK's server offers (`MCPServer.run`); meshkit does not import the SDK."""

    def run(self, transport: str, **kwargs: Any) -> Any: ...


class UsageError(ValueError):
    """A command-line value the server cannot use; `fail` prints it."""


@dataclass(frozen=True)
class ServeOptions:
    transport: str
    host: str
    port: int


def parser(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"example: {prog} --transport streamable-http --host {DEFAULT_HOST} --port {default_port}",
    )
    p.add_argument("--transport", choices=list(TRANSPORTS), default="stdio")
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address for streamable-http (default loopback)")
    p.add_argument("--port", type=int, default=default_port)
    return p


def parse(prog: str, description: str, default_port: int,
          argv: list[str] | None = None) -> ServeOptions:
    """The options (argparse exits 2 with its usage line on unknown or malformed arguments)."""
    args = parser(prog, description, default_port).parse_args(argv)
    return ServeOptions(args.transport, args.host, args.port)


def check_host(host: str) -> None:
    """--host must be an IP address (contracts declare bind addresses, never host names)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--host must be an IP address, got {host!r}") from None


def fail(prog: str, problem: object) -> int:
    """Report unusable input as one line on stderr; the exit code to return (2)."""
    print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


def serve(server: Server, options: ServeOptions) -> None:
    """Run the server on the chosen transport until it stops (stdin closes, or a signal)."""
    if options.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=options.host, port=options.port)
