"""Benchmark: server overhead, concurrency scaling and time to first token.

Run from the service folder:  CI=true uv run python bench/bench_server.py
Everything is measured in this one run, on the built-in jerry-tiny model
(written to a temp dir), against a server subprocess on a free loopback port.

Prints:
- in-process tokens/s (openvino_genai.LLMPipeline, same prompt, same length),
  tokens/s streamed through the server at concurrency 1, and their ratio
  (target >= 0.9);
- aggregate tokens/s at concurrency 1, 4 and 8 and the c8/c1 ratio
  (target >= 3);
- time to first token p50 at concurrency 1.
Concurrency-1 figures are medians over alternating rounds (in-process,
server, in-process, ...), so background load affects both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
os.environ.setdefault("CI", "true")

from conftest import start_server, stop_server

from ov_server.tiny_model import build_tiny_model

MODEL = "jerry-tiny"
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def in_process_tps(model_path: Path, tokens: int, runs: int) -> float:
    import openvino_genai as ov_genai

    pipe = ov_genai.LLMPipeline(str(model_path), "CPU")
    tok = pipe.get_tokenizer()
    prompt = tok.apply_chat_template(MESSAGES, add_generation_prompt=True)
    cfg = ov_genai.GenerationConfig()
    cfg.max_new_tokens = tokens
    cfg.min_new_tokens = tokens
    cfg.do_sample = False
    cfg.apply_chat_template = False
    count = 0

    def streamer(_: str) -> ov_genai.StreamingStatus:
        return ov_genai.StreamingStatus.RUNNING

    pipe.generate(prompt, cfg, streamer)  # warm-up
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = pipe.generate([prompt], cfg)
        dt = time.perf_counter() - t0
        count = res.perf_metrics.get_num_generated_tokens()
        rates.append(count / dt)
    return statistics.median(rates)


def in_process_cb_tps(model_path: Path, tokens: int, runs: int) -> float:
    """The server's own engine (ContinuousBatchingPipeline, same settings),
    driven in-process: separates engine cost from HTTP/streaming cost."""
    from ov_server.registry import builtin_spec

    spec = builtin_spec()
    import openvino_genai as ov_genai

    sc = ov_genai.SchedulerConfig()
    sc.cache_size = spec.scheduler.cache_size
    sc.max_num_seqs = spec.scheduler.max_num_seqs
    sc.max_num_batched_tokens = spec.scheduler.max_num_batched_tokens
    sc.dynamic_split_fuse = spec.scheduler.dynamic_split_fuse
    sc.enable_prefix_caching = spec.scheduler.enable_prefix_caching
    pipe = ov_genai.ContinuousBatchingPipeline(str(model_path), sc, spec.device, dict(spec.properties))
    tok = pipe.get_tokenizer()
    prompt = tok.apply_chat_template(MESSAGES, add_generation_prompt=True)
    ids = tok.encode(prompt, add_special_tokens=False).input_ids
    cfg = ov_genai.GenerationConfig()
    cfg.max_new_tokens = tokens
    cfg.min_new_tokens = tokens
    rates = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        h = pipe.add_request(i, ids, cfg)
        n = 0
        while pipe.has_non_finished_requests():
            pipe.step()
            if h.can_read():
                n += sum(len(o.generated_ids) for o in h.read().values())
        if i:  # first run is warm-up
            rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


async def one_stream(client: httpx.AsyncClient, tokens: int) -> tuple[int, float, float]:
    """Returns (completion tokens, seconds, time to first content)."""
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    ttft = None
    usage = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
    return usage, time.perf_counter() - t0, ttft or 0.0


async def run_concurrency(base: str, conc: int, per_client: int, tokens: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=conc + 2)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        await one_stream(client, 8)  # warm-up
        results: list[tuple[int, float, float]] = []

        async def worker() -> None:
            for _ in range(per_client):
                results.append(await one_stream(client, tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - t0
    total = sum(r[0] for r in results)
    return total / wall, [r[2] for r in results]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512, help="completion tokens per request")
    ap.add_argument("--requests", type=int, default=8, help="requests per client")
    ap.add_argument("--rounds", type=int, default=3, help="alternating in-process/server rounds at concurrency 1")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ov-bench-"))
    model_path = build_tiny_model(tmp / "models")
    server = start_server(tmp)
    load_before = os.getloadavg()[0]
    try:
        # Alternate in-process and server rounds so that background load on a
        # shared machine hits both sides alike; report medians.
        inproc_r, cb_r, c1_r, ttfts = [], [], [], []
        for _ in range(args.rounds):
            inproc_r.append(in_process_tps(model_path, args.tokens, runs=3))
            cb_r.append(in_process_cb_tps(model_path, args.tokens, runs=3))
            rate, tt = asyncio.run(run_concurrency(server.base, 1, args.requests, args.tokens))
            c1_r.append(rate)
            ttfts += tt
        inproc = statistics.median(inproc_r)
        inproc_cb = statistics.median(cb_r)
        rates: dict[int, float] = {1: statistics.median(c1_r)}
        for conc in (4, 8):
            rates[conc] = asyncio.run(run_concurrency(server.base, conc, args.requests, args.tokens))[0]
    finally:
        stop_server(server)

    print(f"model: built-in {MODEL} ({model_path.stat().st_size // 1024} KiB), {args.tokens} tokens/request, "
          f"greedy, {os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"in-process LLMPipeline            : {inproc:8.0f} tokens/s")
    print(f"in-process ContinuousBatching     : {inproc_cb:8.0f} tokens/s   (the server's engine, no HTTP)")
    print(f"server, streamed, concurrency 1   : {rates[1]:8.0f} tokens/s")
    print(f"server / in-process CB            : {rates[1] / inproc_cb:8.2f}")
    print(f"server overhead ratio (c1/inproc) : {rates[1] / inproc:8.2f}   (target >= 0.9)")
    for conc in (1, 4, 8):
        print(f"aggregate, concurrency {conc}          : {rates[conc]:8.0f} tokens/s")
    print(f"concurrency ratio c4/c1           : {rates[4] / rates[1]:8.2f}")
    print(f"concurrency ratio c8/c1           : {rates[8] / rates[1]:8.2f}   (target >= 3)")
    print(f"time to first token p50, c1       : {statistics.median(ttfts) * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
