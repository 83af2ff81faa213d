"""Port allocation from the ledger: never reuse anything the ledger has ever listed."""

from __future__ import annotations

from homelab.contract.mesh import PortLedger

FIRST_PORT = 4000
LAST_PORT = 4999


def next_free_port(ledger: PortLedger, host: str, taken_elsewhere: set[int] = frozenset()) -> int:
    used = {p.port for p in ledger.ports if p.host == host} | set(taken_elsewhere)
    for port in range(FIRST_PORT, LAST_PORT + 1):
        if port not in used:
            return port
    raise ValueError(f"no free port left in {FIRST_PORT}-{LAST_PORT} on host {host}")
