"""`mesh-status --transport stdio|streamable-http [--host H --port P]` (meshkit.mcpserve)."""

from __future__ import annotations

import sys

from meshkit import mcpserve

from mesh_status.contracts import ContractsError, find_root
from mesh_status.server import build_server

PROG = "mesh-status"
DESCRIPTION = "MCP tool server: read-only tools over the mesh (models, health, topology)."
DEFAULT_PORT = 4041


def main(argv: list[str] | None = None) -> int:
    options = mcpserve.parse(PROG, DESCRIPTION, DEFAULT_PORT, argv)
    try:
        mcpserve.check_host(options.host)
        find_root()
    except (mcpserve.UsageError, ContractsError) as exc:
        return mcpserve.fail(PROG, exc)
    mcpserve.serve(build_server(), options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
