"""Runtime benchmark: health-sweep concurrency and `homelab up` to all-healthy.

    uv run python platform/control-plane/bench/bench_runtime.py [--skip-up] [--endpoints 50]

Prints, from one run:
  1. Synthetic sweep: N endpoints on loopback, each answering after its own delay (10-200 ms).
     Sweep time vs the slowest single probe (ideal ratio 1.0) and vs the sum of all probes.
  2. Real-mesh sweep over the contracts of this checkout (whatever is running; refused
     connections count as fast probes), ratio to the slowest single probe.
  3. `homelab up --no-prepare` in a private mesh (meshkit.testing.PrivateMesh: a clone of the
     checkout in its own network namespace, on the contract ports; needs root), environments
     built first, not timed: time to all healthy; the real-mesh sweep; then ov-server and the
     gateway killed in turn, time until each is healthy again; then `homelab down`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from homelab.load.repo import load_repo
from homelab.runtime.probe import Target, probe_all, targets
from meshkit.testing import PrivateMesh, netns_unavailable

ROOT = Path(__file__).resolve().parents[3]


def serve_synthetic(n: int) -> tuple[list[Target], asyncio.AbstractEventLoop]:
    """n HTTP endpoints on loopback in one background event loop; endpoint i waits d_i ms."""
    delays = [0.010 + 0.190 * i / max(n - 1, 1) for i in range(n)]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    items: list[Target] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      delay: float) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        body = b'{"status":"ok"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        writer.close()

    async def start() -> None:
        for i, delay in enumerate(delays):
            server = await asyncio.start_server(
                lambda r, w, d=delay: handler(r, w, d), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            items.append(Target(f"synthetic-{i}", f"http://127.0.0.1:{port}/health",
                                expect_body="ok"))
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    return items, loop


def sweep_figures(items: list[Target], repeats: int = 5) -> dict[str, float]:
    singles = []
    for t in items:  # wall time of a one-target sweep (same overhead), median of 3
        times = []
        for _ in range(3):
            start = time.perf_counter()
            probe_all([t])
            times.append((time.perf_counter() - start) * 1000)
        singles.append(statistics.median(times))
    sweeps = []
    for _ in range(repeats):
        start = time.perf_counter()
        probe_all(items)
        sweeps.append((time.perf_counter() - start) * 1000)
    sweep = statistics.median(sweeps)
    slowest = max(singles)
    return {"endpoints": len(items), "sweep_ms": sweep, "slowest_single_ms": slowest,
            "sum_singles_ms": sum(singles), "ratio_to_slowest": sweep / slowest,
            "ratio_to_sum": sweep / sum(singles)}


def show(title: str, fig: dict[str, float]) -> None:
    print(f"{title}: {fig['endpoints']} endpoints, sweep {fig['sweep_ms']:.0f} ms (median of 5), "
          f"slowest single {fig['slowest_single_ms']:.0f} ms (median of 3), sum of singles "
          f"{fig['sum_singles_ms']:.0f} ms -> ratio to slowest {fig['ratio_to_slowest']:.2f}, "
          f"to sum {fig['ratio_to_sum']:.3f}")


def recovery(mesh: PrivateMesh, name: str, items: list[Target]) -> float:
    """Crash a service and time until its health probe passes again."""
    status = json.loads(mesh.homelab("status", "--json").stdout)
    pid = next(s["pid"] for s in status["services"] if s["service"] == name)
    target = next(t for t in items if t.service == name)
    os.killpg(pid, signal.SIGKILL)
    start = time.monotonic()
    time.sleep(0.05)
    with mesh.netns.entered():
        while not probe_all([target])[0].ok:
            if time.monotonic() - start > 600:
                return float("nan")
            time.sleep(0.1)
    return time.monotonic() - start


def bench_up(services: list[str] | None) -> None:
    why_not = netns_unavailable()
    if why_not:
        print(f"up benchmark skipped: {why_not}")
        return
    with tempfile.TemporaryDirectory(prefix="hl-bench-") as tmp, \
            PrivateMesh.create(Path(tmp), repo=ROOT, prefix="hl-bench") as mesh:
        only = [a for name in (services or []) for a in ("--only", name)]
        start = time.monotonic()
        # Outside the namespace (the package index is there): the clone's environments from
        # the uv cache; then `up` inside starts everything.
        mesh.presync(sorted({(mesh.root / s.rel_dir / s.spec.run.uv_project).resolve()
                             for s in load_repo(mesh.root).services.values()
                             if s.spec.run.uv_project is not None
                             and (not services or s.name in services)}))
        prep = mesh.homelab("up", *only)
        print(f"up (fresh clone, environments created from the uv cache): exit {prep.returncode} "
              f"in {time.monotonic() - start:.1f} s")
        if prep.returncode != 0:
            print(prep.stdout[-2000:], prep.stderr[-2000:])
        mesh.homelab("down")
        start = time.monotonic()
        timed = mesh.homelab("up", "--no-prepare", *only)
        elapsed = time.monotonic() - start
        print(f"up --no-prepare to all healthy: exit {timed.returncode} in {elapsed:.1f} s")
        print("".join(f"    {line}\n" for line in timed.stdout.splitlines() if "healthy" in line),
              end="")
        if timed.returncode == 0:
            real = targets(load_repo(mesh.root), local_host="local")
            with mesh.netns.entered():  # the probes' sockets inside the mesh's namespace
                figures = sweep_figures(real)
            show("real-mesh sweep (private mesh, all up)", figures)
            for name in ("ov-server", "litellm-orch"):
                if any(t.service == name for t in real):
                    print(f"{name} killed (SIGKILL to its process group): healthy again after "
                          f"{recovery(mesh, name, real):.1f} s (supervisord restart)")
        else:
            print(timed.stdout[-2000:], timed.stderr[-2000:])
        down = mesh.homelab("down")
        print(f"down: exit {down.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--skip-up", action="store_true", help="only the sweep figures")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="start only these services in the up benchmark (repeatable)")
    args = parser.parse_args()
    items, _loop = serve_synthetic(args.endpoints)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    show("synthetic sweep", sweep_figures(items))
    show("this checkout's contracts (whatever runs now)",
         sweep_figures(targets(load_repo(ROOT), local_host="local")))
    if not args.skip_up:
        bench_up(args.only)


if __name__ == "__main__":
    main()
