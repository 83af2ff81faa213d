"""`mesh-status --transport stdio|streamable-http [--host H --port P]`."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from meshkit.view import ViewError, load_view

from mesh_status.server import build_server


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mesh-status",
        description="MCP tool server: read-only tools over the mesh (models, health, topology).",
        epilog="example: mesh-status --transport streamable-http --host 127.0.0.1 --port 4041",
    )
    p.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="bind address for streamable-http (default loopback)")
    p.add_argument("--port", type=int, default=4041)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        ipaddress.ip_address(args.host)
        load_view()
    except ValueError:
        print(f"mesh-status: error: --host must be an IP address, got {args.host!r}", file=sys.stderr)
        return 2
    except ViewError as exc:
        print(f"mesh-status: error: {exc}", file=sys.stderr)
        return 2
    server = build_server()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
