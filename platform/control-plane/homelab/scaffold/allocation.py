"""Port allocation from the ledger: never reuse anything the ledger has ever listed, and keep the
mesh's layout, where the tens digit says the kind:

    40x0-40x9: x = 0 gateway, 1 backends, 2 optimizers, 3 clients, 4 MCP tools (4010 ov-server,
    4020 optillm-proxy, 4040 web-fetch, 4041 mesh-status ...)

A full block continues in the same place of the next hundred (41x0-41x9, 42x0 ...).
"""

from __future__ import annotations

from homelab.contract.mesh import PortLedger

BASE = 4000
KIND_BLOCK = {"gateway": 0, "backend": 1, "optimizer": 2, "client": 3, "mcp-tool": 4}
HUNDREDS = 10  # 4000-4999


def layout(kind: str) -> list[int]:
    """Every port of a kind's blocks, in allocation order."""
    block = KIND_BLOCK.get(kind, 5)  # interfaces and anything new: 4050-4059, 4150 ...
    return [BASE + 100 * h + 10 * block + i for h in range(HUNDREDS) for i in range(10)]


def next_free_port(ledger: PortLedger, host: str, kind: str,
                   taken_elsewhere: set[int] = frozenset()) -> int:
    used = {p.port for p in ledger.ports if p.host == host} | set(taken_elsewhere)
    for port in layout(kind):
        if port not in used:
            return port
    raise ValueError(f"no free {kind} port left in the layout on host {host}")
