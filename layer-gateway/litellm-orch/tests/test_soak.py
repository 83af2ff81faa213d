"""Memory soak (issue 10): the gateway's resident memory, summed over all its processes, stays
flat under sustained mixed traffic once warmed up.

Bounded: about 2,000 requests over loopback at concurrency 8 (one to a few minutes on 2 shared
cores). The mix is what a gateway meets: answers (plain and streamed) from the real ov-server,
refused callers, bad bodies, unserved endpoints, a backend error.

Tolerance: after warm-up, growth over the measured rounds must stay under 24 MiB for the whole
gateway (2 workers + master), i.e. below ~12 KiB per request. A per-request leak of the size
the issue found in ov-server (20 KB/request) crosses it; allocator noise (a few MiB) does not.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
import procs

from meshkit.testing import ServerProcess

WARMUP = 400
ROUNDS = 3
PER_ROUND = 550
CONCURRENCY = 8
TOLERANCE_KIB = 24 * 1024


def _requests(base: str, key: str):
    auth = {"Authorization": f"Bearer {key}"}
    chat = {"model": "jerry-tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    mix = [
        ("POST", "/v1/chat/completions", chat, auth),
        ("POST", "/v1/chat/completions", {**chat, "stream": True}, auth),
        ("POST", "/v1/chat/completions", chat, {}),
        ("POST", "/v1/chat/completions", {**chat, "tools": "x"}, auth),
        ("POST", "/v1/embeddings", {"model": "jerry-tiny", "input": "x"}, auth),
        ("GET", "/v1/models", None, auth),
        ("POST", "/v1/chat/completions", {**chat, "model": "jerry-broken"}, auth),
        ("POST", "/v1/chat/completions", chat, auth),
    ]
    return itertools.cycle(mix)


async def _drive(base: str, key: str, count: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    source = _requests(base, key)
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(count):
        queue.put_nowait(next(source))

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            method, path, body, headers = queue.get_nowait()
            resp = await client.request(method, f"{base}{path}", json=body, headers=headers)
            await resp.aread()
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return statuses


def _rss_kib(gateway: ServerProcess) -> int:
    master, workers = procs.gateway_tree(gateway)
    return sum(procs.rss_kib(p) for p in [master, *workers])


def _cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _warm_every_worker(gateway: ServerProcess, key: str, max_drives: int = 8) -> None:
    """Warm up until every worker has served. A client's keep-alive connections stick to the
    worker that accepted them, so one warm-up drive can leave a worker idle; its first requests
    later cost ~60 MiB once (lazy imports and caches), which looked like a leak (seen). A worker
    has served when it used a fair share of the CPU the busiest one used during the warm-up."""
    _, workers = procs.gateway_tree(gateway)
    start = {w: _cpu_ticks(w) for w in workers}
    for _ in range(max_drives):
        statuses = asyncio.run(_drive(gateway.base, key, WARMUP))
        assert statuses.get(200, 0) > WARMUP // 3, statuses  # the answers really flowed
        used = {w: _cpu_ticks(w) - start[w] for w in workers}
        if min(used.values()) >= 0.2 * max(used.values()):
            return
    raise AssertionError(f"a worker never served during {max_drives} warm-up drives (CPU ticks: {used})")


def test_gateway_memory_is_flat_under_sustained_traffic(gateway: ServerProcess, keys: dict[str, str]) -> None:
    _warm_every_worker(gateway, keys["master"])
    samples = [_rss_kib(gateway)]
    for _ in range(ROUNDS):
        statuses = asyncio.run(_drive(gateway.base, keys["master"], PER_ROUND))
        assert set(statuses) <= {200, 400, 401, 404, 502}, statuses  # no 500, no crash
        samples.append(_rss_kib(gateway))
    growth = samples[-1] - samples[0]
    print(f"\ngateway RSS after warm-up and each round of {PER_ROUND} requests (MiB): "
          + ", ".join(f"{s / 1024:.1f}" for s in samples)
          + f"; growth {growth / 1024:.1f} MiB = {growth / (ROUNDS * PER_ROUND):.1f} KiB/request")
    assert growth < TOLERANCE_KIB, f"RSS grew {growth / 1024:.1f} MiB over {ROUNDS * PER_ROUND} requests"
