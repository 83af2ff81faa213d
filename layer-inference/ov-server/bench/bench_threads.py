"""Benchmark: how many inference threads the built-in models should get (issue 9).

Run from the service folder:  CI=true uv run python bench/bench_threads.py [--threads 1,2]
One ov-server per thread count, each serving the built-in jerry-chat (SmolLM2-135M) and
jerry-tiny with their built-in spec except `INFERENCE_NUM_THREADS`; measured in alternating
rounds (1, 2, 1, 2, ...; medians), so background load hits every setting alike. Prints, per
model and setting: streamed tokens/s at concurrency 1 and 8 (aggregate), time to first streamed
token p50 at c1, one-token latency p50, and the server's process-tree RSS after the run; ratios
against the first setting in this run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("CI", "true")

from bench_vs_llama_server import serve_round, tree_rss_mb
from conftest import start_server, stop_server

MODELS = {"jerry-chat": 128, "jerry-tiny": 256}  # completion tokens per streamed request


def registry(threads: int) -> str:
    lines = ["models:"]
    for name in MODELS:
        lines += [f"  {name}:", f"    builtin: {name}", f"    properties: {{INFERENCE_NUM_THREADS: {threads}}}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma list of INFERENCE_NUM_THREADS values")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=3, help="requests per client per round")
    args = ap.parse_args()
    settings = [int(t) for t in args.threads.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="ov-threads-"))
    load0 = os.getloadavg()[0]
    servers = {}
    figs: dict[tuple[str, int], dict[str, list[float]]] = {}
    try:
        for t in settings:
            d = tmp / f"t{t}"
            d.mkdir()
            (d / "reg.yaml").write_text(registry(t))
            # one model folder for all: the GGUF is converted once
            servers[t] = start_server(d, {"OV_SERVER_REGISTRY": str(d / "reg.yaml"),
                                          "OV_SERVER_MODEL_DIR": str(tmp / "models")})
        for _ in range(args.rounds):
            for t in settings:
                base = f"http://127.0.0.1:{servers[t].port}"
                for model, tokens in MODELS.items():
                    f = figs.setdefault((model, t), {"c1": [], "c8": [], "ttft": [], "one": [], "rss": []})
                    rate, samples, ones = asyncio.run(serve_round(base, model, 1, args.requests, tokens, 3))
                    f["c1"].append(rate)
                    f["ttft"] += [s.ttft for s in samples]
                    f["one"] += ones
                    rate, _, _ = asyncio.run(serve_round(base, model, 8, max(1, args.requests // 2), tokens, 0))
                    f["c8"].append(rate)
                    f["rss"].append(tree_rss_mb(servers[t].proc.pid))
    finally:
        for s in servers.values():
            stop_server(s)
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    print(f"{os.cpu_count()} CPUs, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} alternating rounds; ratios against INFERENCE_NUM_THREADS={settings[0]}")
    print(f"{'model':<11} {'threads':>7} {'c1 tok/s':>9} {'c8 tok/s':>9} {'TTFT ms':>8} {'1-tok ms':>8} "
          f"{'RSS MiB':>8}  ratios c1 / c8 / TTFT")
    for model in MODELS:
        base = figs[(model, settings[0])]
        for t in settings:
            f = figs[(model, t)]
            print(f"{model:<11} {t:>7} {med(f['c1']):>9.1f} {med(f['c8']):>9.1f} {med(f['ttft']) * 1e3:>8.1f} "
                  f"{med(f['one']) * 1e3:>8.1f} {max(f['rss']):>8.0f}  "
                  f"{med(f['c1']) / med(base['c1']):.2f} / {med(f['c8']) / med(base['c8']):.2f} / "
                  f"{med(f['ttft']) / med(base['ttft']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
