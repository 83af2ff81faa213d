"""`mesh-status --transport stdio|streamable-http [--host H --port P]` (meshkit.mcpserve)."""

from __future__ import annotations

import sys

from meshkit import mcpserve
from meshkit.view import ViewError, load_view

from mesh_status.server import build_server

PROG = "mesh-status"
DESCRIPTION = "MCP tool server: read-only tools over the mesh (models, health, topology)."
DEFAULT_PORT = 4041


def main(argv: list[str] | None = None) -> int:
    options = mcpserve.parse(PROG, DESCRIPTION, DEFAULT_PORT, argv)
    try:
        mcpserve.check_host(options.host)
        load_view()
    except (mcpserve.UsageError, ViewError) as exc:
        return mcpserve.fail(PROG, exc)
    mcpserve.serve(build_server(), options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
