"""Bounded soak (loopback only, about a minute): rounds of hostile pages, four tag-dense pages at
once plus a normal article, against the real server process and its extraction workers.

Memory is read from /proc when the round is over (every worker idle). After two warm-up rounds:
- the server process itself stays within SERVER_TOLERANCE of its post-warm-up RSS (it never
  parses a page: before the workers, four such pages took it from 0.48 to 1.55 GB for good);
- the whole tree (server + workers) stays within TREE_TOLERANCE: idle workers give their heap
  back or are replaced, so nothing accumulates round after round;
- there are never more workers than WEB_FETCH_WORKERS.
The figures are printed (run with -s to see them)."""

from __future__ import annotations

import os
import time
import uuid

import anyio
import pytest
from conftest import DENSE_UNITS, marked_pids
from mcp import Client
from test_hostile_clients import start, stop_and_check_nothing_left

MIB = 1024 * 1024
WARMUP_ROUNDS = 2
ROUNDS = 5
SERVER_TOLERANCE = 24 * MIB
TREE_TOLERANCE = 64 * MIB


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0  # gone between listing and reading: a worker being replaced


async def one_round(base: str, site: str) -> list[str]:
    outcomes: list[str] = []

    async def fetch(path: str) -> None:
        async with Client(f"{base}/mcp") as client:
            result = await client.call_tool("fetch", {"url": f"{site}{path}"})
        text = result.content[0].text if result.is_error else "ok"
        assert not result.is_error or "timeout: the page" in text, text[:300]
        outcomes.append(f"{path}: {'ok' if not result.is_error else 'timeout'}")

    async with anyio.create_task_group() as tg:
        for kind in sorted(DENSE_UNITS):
            tg.start_soon(fetch, f"/dense/{kind}")
        tg.start_soon(fetch, "/article")
    return outcomes


@pytest.mark.timeout(600)
def test_rss_stays_flat_under_hostile_pages(site):
    server = start(uuid.uuid4().hex)
    try:
        samples: list[tuple[int, int, int]] = []  # (server RSS, tree RSS, workers)
        started = time.monotonic()
        for n in range(WARMUP_ROUNDS + ROUNDS):
            outcomes = anyio.run(one_round, server.base, site)
            pids = marked_pids(server.mark)
            workers = [p for p in pids if p != server.proc.pid]
            samples.append((rss(server.proc.pid), sum(rss(p) for p in pids), len(workers)))
            print(f"round {n}: server {samples[-1][0] / MIB:.0f} MiB, tree {samples[-1][1] / MIB:.0f} MiB, "
                  f"{len(workers)} workers, {time.monotonic() - started:.0f} s; {', '.join(sorted(outcomes))}")
            assert len(workers) <= 2, workers  # WEB_FETCH_WORKERS' default
        base_server, base_tree, _ = samples[WARMUP_ROUNDS - 1]
        after = samples[WARMUP_ROUNDS:]
        server_growth = max(s for s, _t, _w in after) - base_server
        tree_growth = max(t for _s, t, _w in after) - base_tree
        figures = [(s // MIB, t // MIB) for s, t, _w in samples]
        assert server_growth <= SERVER_TOLERANCE, f"server RSS grew {server_growth / MIB:.1f} MiB: {figures}"
        assert tree_growth <= TREE_TOLERANCE, f"tree RSS grew {tree_growth / MIB:.1f} MiB: {figures}"
        assert server.proc.poll() is None
    finally:
        stop_and_check_nothing_left(server)
