"""`llamacpp-server --host H --port P`: run the server (the contract's run.command)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from llamacpp_server.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llamacpp-server", description=__doc__,
                                     epilog="example: llamacpp-server --host 127.0.0.1 --port 4011")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (an IP address)")
    parser.add_argument("--port", type=int, default=4011)
    args = parser.parse_args(argv)
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        print(f"llamacpp-server: error: --host must be an IP address, got {args.host!r}", file=sys.stderr)
        return 2
    try:
        serve(args.host, args.port)
    except OSError as exc:
        print(f"llamacpp-server: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
