"""Bounded soak of HTTP mode (loopback only, a minute or two): many `POST /run` through the real
LiteLLM gateway to the scripted backend, each a full agent run with two tool calls on the real
mesh-status server (stdio child), four at a time.

RSS of the `tiny-agents serve` process is read between batches. After WARMUP_RUNS, it stays
within TOLERANCE of the first post-warm-up sample for MEASURED_RUNS more runs: a per-run leak of
about TOLERANCE / MEASURED_RUNS (~70 KB) or more fails the test. The figures are printed (run
with -s to see them)."""

from __future__ import annotations

import os
import time

import anyio
import httpx
import pytest
from conftest import SERVE_KEY, serving

MIB = 1024 * 1024
CONCURRENCY = 4
WARMUP_RUNS = 30
BATCH = 40
BATCHES = 3
MEASURED_RUNS = BATCH * BATCHES
TOLERANCE = 8 * MIB
QUESTION = "[scenario:mesh] is jerry-tiny up, and where does it run?"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def runs(base: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {SERVE_KEY}"}
    limiter = anyio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        async def one() -> None:
            async with limiter:
                r = await client.post("/run", json={"question": QUESTION})
            assert r.status_code == 200, r.text[:300]
            assert [c["name"] for c in r.json()["tool_calls"]] == ["list_models", "service_health"]

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)


@pytest.mark.timeout(600)
def test_http_mode_rss_stays_flat_over_many_runs(mesh):
    with serving(mesh, "--servers", "mesh-status") as served:
        pid = served.popen.pid
        started = time.monotonic()
        anyio.run(runs, served.base, WARMUP_RUNS)
        samples = [rss(pid)]
        print(f"after {WARMUP_RUNS} warm-up runs: {samples[0] / MIB:.1f} MiB ({time.monotonic() - started:.0f} s)")
        for n in range(BATCHES):
            anyio.run(runs, served.base, BATCH)
            samples.append(rss(pid))
            print(f"after {WARMUP_RUNS + (n + 1) * BATCH} runs: {samples[-1] / MIB:.1f} MiB "
                  f"({time.monotonic() - started:.0f} s)")
        growth = max(samples) - samples[0]
        figures = [f"{s / MIB:.1f}" for s in samples]
        assert growth <= TOLERANCE, f"RSS grew {growth / MIB:.1f} MiB over {MEASURED_RUNS} runs: {figures} MiB"
        assert served.popen.poll() is None
    assert "Traceback" not in served.log.read_text()
