"""Tool-call cost over the two registry transports, measured in one run.

Starts mesh-status over streamable HTTP on a free loopback port, then connects the agent's
Toolbox to it over HTTP and over stdio (spawned with `uv run --project`, as the registry does),
and times connection set-up and N `list_models` calls each. Prints figures and the ratio.

usage: uv run python bench/bench_tool_transports.py [--calls 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from meshkit.testing import ServerProcess, free_port

from tiny_agents.servers import ServerConfig
from tiny_agents.toolbox import Toolbox

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "layer-tools" / "mesh-status"


async def measure(cfg: ServerConfig, calls: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    async with Toolbox([cfg]) as tb:
        setup = time.perf_counter() - start
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            outcome = await tb.call("list_models", "{}")
            assert not outcome.is_error, outcome.text
            times.append(time.perf_counter() - t)
    return setup, times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    env = {**os.environ, "HOMELAB_MESH_VIEW": str(REPO / "mesh" / "view.json")}
    env.pop("VIRTUAL_ENV", None)
    port = free_port()
    cmd = ["uv", "run", "--project", str(TOOL), "mesh-status", "--transport", "streamable-http", "--port", str(port)]
    with tempfile.TemporaryDirectory(prefix="bench-transports-") as tmp, \
            ServerProcess.start("mesh-status", cmd, log=Path(tmp) / "mesh-status.log", port=port, env=env, timeout=60):
        http = ServerConfig("mesh-status", "http", url=f"http://127.0.0.1:{port}/mcp")
        stdio = ServerConfig("mesh-status", "stdio", command="uv",
                             args=("run", "--project", str(TOOL), "mesh-status", "--transport", "stdio"), cwd=REPO)
        results = {name: anyio.run(measure, cfg, args.calls) for name, cfg in (("http", http), ("stdio", stdio))}
    print(f"mesh-status list_models, {args.calls} sequential calls per transport (2-core machine, one run)")
    for name, (setup, times) in results.items():
        ms = sorted(t * 1000 for t in times)
        p95 = ms[int(0.95 * (len(ms) - 1))]
        print(f"  {name:5s}: connect {setup * 1000:7.1f} ms   call p50 {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms")
    ratio = statistics.median(results["http"][1]) / statistics.median(results["stdio"][1])
    print(f"  http/stdio call p50 ratio: {ratio:.2f}   stdio/http connect ratio: "
          f"{results['stdio'][0] / results['http'][0]:.1f}")


if __name__ == "__main__":
    main()
