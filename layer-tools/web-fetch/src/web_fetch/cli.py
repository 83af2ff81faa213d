"""`web-fetch --transport stdio|streamable-http [--host H --port P]`."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from web_fetch.config import ConfigError, from_env
from web_fetch.server import build_server, make_pool


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="web-fetch",
        description="MCP tool server: fetch a URL as clean text, SSRF-safe by default.",
        epilog="example: web-fetch --transport streamable-http --host 127.0.0.1 --port 4040",
    )
    p.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="bind address for streamable-http (default loopback)")
    p.add_argument("--port", type=int, default=4040)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        settings = from_env()
        ipaddress.ip_address(args.host)
    except ConfigError as exc:
        print(f"web-fetch: error: {exc}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"web-fetch: error: --host must be an IP address, got {args.host!r}", file=sys.stderr)
        return 2
    pool = make_pool(settings)
    server = build_server(settings, pool=pool)
    try:
        if args.transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=args.host, port=args.port)
    finally:
        pool.kill_all()  # no extraction worker outlives the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
