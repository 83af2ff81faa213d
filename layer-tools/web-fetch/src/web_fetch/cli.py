"""`web-fetch --transport stdio|streamable-http [--host H --port P]` (meshkit.mcpserve)."""

from __future__ import annotations

import sys

from meshkit import mcpserve

from web_fetch.config import ConfigError, from_env
from web_fetch.server import build_server, make_pool

PROG = "web-fetch"
DESCRIPTION = "MCP tool server: fetch a URL as clean text, SSRF-safe by default."
DEFAULT_PORT = 4040


def main(argv: list[str] | None = None) -> int:
    options = mcpserve.parse(PROG, DESCRIPTION, DEFAULT_PORT, argv)
    try:
        settings = from_env()
        mcpserve.check_host(options.host)
    except (ConfigError, mcpserve.UsageError) as exc:
        return mcpserve.fail(PROG, exc)
    pool = make_pool(settings)
    server = build_server(settings, pool=pool)
    try:
        mcpserve.serve(server, options)
    finally:
        pool.kill_all()  # no extraction worker outlives the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
