"""Benchmark: server overhead, concurrency scaling and time to first token.

Run from the service folder:  CI=true uv run python bench/bench_server.py
Everything is measured in this one run against a server subprocess on a free
loopback port, for two models written to a temp dir: the built-in jerry-tiny
(a token costs ~0.1 ms, so fixed per-token costs dominate) and a larger
synthetic model from the same builder (`--hidden 1024 --layers 8` by
default, ~165 MB: same tokenizer and template, random F16 weights; a token
costs ~5 ms on 2 cores, like a small real model; 512x4 measured only
~0.6 ms/token). `--hidden 0` skips the larger model. Both are written to a
temp dir that is removed at the end.

Prints, for each model:
- in-process tokens/s (openvino_genai.LLMPipeline, same prompt, same length),
  tokens/s streamed through the server at concurrency 1, and their ratio
  (target >= 0.9); for a model with compile properties (the built-in one runs
  on one thread) also LLMPipeline with those same properties, and that ratio;
- aggregate tokens/s at concurrency 1, 4 and 8 and the c8/c1 ratio
  (target >= 3);
- time to first token p50 at concurrency 1.
Concurrency-1 figures are medians over alternating rounds (in-process,
server, in-process, ...), so background load affects both sides alike.

`--metrics`: instead, the cost of /metrics counting. Two servers of the built-in model, one with
metrics (the default) and one with `OV_SERVER_METRICS=0`, measured in alternating rounds (on, off,
on, ...; medians): streamed tokens/s at concurrency 1 and 8, and short requests/s at concurrency 8
(per-request costs dominate there), each printed with its on/off ratio (target: ~1.0, i.e. within
the run's noise), while a scraper reads /metrics of the "on" server every 0.5 s.

`--detokenizer`: the same alternating A/B for how streams are detokenized: the vocabulary table
(the default, `OV_SERVER_DETOKENIZER=auto`) against the tokenizer model (`model`), on jerry-tiny
(`--tokens`) and the real jerry-chat (`--large-tokens`): tokens/s at concurrency 1 and 8 and time
to first token (target: A/B > 1 at c1, where the HTTP process's per-token cost shows).

`--interval`: the same A/B for the stream interval (outbox.py): the default 2 ms against a frame
per engine step (`OV_SERVER_STREAM_INTERVAL_MS=0`), on jerry-tiny and jerry-chat: tokens/s at
concurrency 1 and 8, time to first token, and SSE events per streamed token (at 0 ms ~1; target:
jerry-tiny faster, jerry-chat unchanged, time to first token unchanged).

`--placement`: the same A/B for where jerry-tiny's engine process runs (placement.py): on one CPU
(the default, `cpus: auto` for a one-thread model) against unconfined (`cpus: all`): tokens/s at
concurrency 1 and 8, time to first token, 4-token requests/s at concurrency 8 (target: A/B > 1 at
c1, where the engine's step waited for its sampler thread on another core; c8 not worse).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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
from sselines import sse_lines

from ov_server.registry import ModelSpec, builtin_spec
from ov_server.tiny_model import DEFAULT_SHAPE, Shape, build_tiny_model

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def in_process_tps(model_path: Path, tokens: int, runs: int, properties: dict | None = None) -> float:
    """LLMPipeline, with OpenVINO's defaults or with the given compile properties."""
    import openvino_genai as ov_genai

    pipe = ov_genai.LLMPipeline(str(model_path), "CPU", **(properties or {}))
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


def in_process_cb_tps(model_path: Path, spec: ModelSpec, tokens: int, runs: int) -> float:
    """The server's own engine (ContinuousBatchingPipeline, same settings),
    driven in-process: separates engine cost from HTTP/streaming cost."""
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


async def one_stream(client: httpx.AsyncClient, model: str, tokens: int) -> tuple[int, float, float, int]:
    """Returns (completion tokens, seconds, time to first content, events that carried content)."""
    # ignore_eos: the random models end their answers by themselves; the
    # benchmark needs exactly `tokens` tokens, like the in-process runs.
    body = {"model": model, "messages": MESSAGES, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    t0 = time.perf_counter()
    ttft = None
    usage = 0
    events = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in sse_lines(r):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                events += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
    return usage, time.perf_counter() - t0, ttft or 0.0, events


async def run_concurrency(base: str, model: str, conc: int, per_client: int, tokens: int
                          ) -> tuple[float, list[float], float]:
    """(aggregate tokens/s, each request's time to first token, content events per token)."""
    limits = httpx.Limits(max_connections=conc + 2)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        await one_stream(client, model, 8)  # warm-up
        results: list[tuple[int, float, float, int]] = []

        async def worker() -> None:
            for _ in range(per_client):
                results.append(await one_stream(client, model, tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - t0
    total = sum(r[0] for r in results)
    return total / wall, [r[2] for r in results], sum(r[3] for r in results) / max(total, 1)


def measure(tmp: Path, name: str, model_path: Path, spec: ModelSpec, registry: str | None,
            tokens: int, requests: int, rounds: int) -> dict[str, float]:
    """All figures for one model, against its own server subprocess."""
    env = {"OV_SERVER_REGISTRY": registry} if registry else None
    server = start_server(tmp / name, env)
    try:
        # Alternate in-process and server rounds so that background load on a
        # shared machine hits both sides alike; report medians.
        inproc_r, same_r, cb_r, c1_r, ttfts = [], [], [], [], []
        for _ in range(rounds):
            inproc_r.append(in_process_tps(model_path, tokens, runs=3))
            if spec.properties:  # the server's own settings too (the built-in model: one thread)
                same_r.append(in_process_tps(model_path, tokens, runs=3, properties=dict(spec.properties)))
            cb_r.append(in_process_cb_tps(model_path, spec, tokens, runs=3))
            rate, tt, _ = asyncio.run(run_concurrency(server.base, name, 1, requests, tokens))
            c1_r.append(rate)
            ttfts += tt
        out = {"inproc": statistics.median(inproc_r), "inproc_cb": statistics.median(cb_r),
               "c1": statistics.median(c1_r), "ttft": statistics.median(ttfts)}
        if same_r:
            out["inproc_same"] = statistics.median(same_r)
        for conc in (4, 8):
            out[f"c{conc}"] = asyncio.run(run_concurrency(server.base, name, conc, requests, tokens))[0]
    finally:
        stop_server(server)
    return out


def report(title: str, tokens: int, r: dict[str, float]) -> None:
    print(f"== {title}: {tokens} tokens/request, greedy, ignore_eos")
    print(f"in-process LLMPipeline            : {r['inproc']:8.0f} tokens/s   ({1000 / r['inproc']:.2f} ms/token)")
    print(f"in-process ContinuousBatching     : {r['inproc_cb']:8.0f} tokens/s   (the server's engine, no HTTP)")
    print(f"server, streamed, concurrency 1   : {r['c1']:8.0f} tokens/s")
    print(f"server / in-process CB            : {r['c1'] / r['inproc_cb']:8.2f}")
    print(f"server overhead ratio (c1/inproc) : {r['c1'] / r['inproc']:8.2f}   (target >= 0.9)")
    if "inproc_same" in r:
        print(f"in-process LLMPipeline, same props: {r['inproc_same']:8.0f} tokens/s   (the model's properties)")
        print(f"server / LLMPipeline, same props  : {r['c1'] / r['inproc_same']:8.2f}")
    for conc in (1, 4, 8):
        print(f"aggregate, concurrency {conc}          : {r[f'c{conc}']:8.0f} tokens/s")
    print(f"concurrency ratio c4/c1           : {r['c4'] / r['c1']:8.2f}")
    print(f"concurrency ratio c8/c1           : {r['c8'] / r['c1']:8.2f}   (target >= 3)")
    print(f"time to first token p50, c1       : {r['ttft'] * 1000:8.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512, help="completion tokens per request (built-in model)")
    ap.add_argument("--requests", type=int, default=8, help="requests per client (built-in model)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating in-process/server rounds at concurrency 1")
    ap.add_argument("--hidden", type=int, default=1024, help="hidden size of the larger synthetic model (0 = skip it)")
    ap.add_argument("--layers", type=int, default=8, help="layers of the larger synthetic model")
    ap.add_argument("--large-tokens", type=int, default=128, help="completion tokens per request (larger model)")
    ap.add_argument("--large-requests", type=int, default=4, help="requests per client (larger model)")
    ap.add_argument("--metrics", action="store_true", help="measure metrics on vs off instead (see above)")
    ap.add_argument("--detokenizer", action="store_true",
                    help="measure the vocabulary-table detokenizer vs the tokenizer model instead (see above)")
    ap.add_argument("--interval", action="store_true",
                    help="measure the default stream interval (2 ms) vs a frame per step instead (see above)")
    ap.add_argument("--placement", action="store_true",
                    help="measure jerry-tiny's engine on one CPU (cpus: auto) vs on all (cpus: all) instead")
    args = ap.parse_args()
    ab = [name for name in AB if getattr(args, name)]
    if len(ab) > 1:
        ap.error("--metrics, --detokenizer, --interval and --placement are separate runs: pick one")
    if ab:
        return bench_ab(args, ab[0])
    if args.hidden and (args.hidden % DEFAULT_SHAPE.heads or args.hidden < 16 or args.layers < 1):
        ap.error(f"--hidden must be a multiple of {DEFAULT_SHAPE.heads} (>= 16) and --layers >= 1")

    tmp = Path(tempfile.mkdtemp(prefix="ov-bench-"))
    load_before = os.getloadavg()[0]

    try:
        runs = measure_all(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the larger model is ~165 MB

    print(f"{os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
          "figures are medians within this run only")
    for title, tokens, r in runs:
        report(title, tokens, r)
    return 0


def measure_all(tmp: Path, args: argparse.Namespace) -> list[tuple[str, int, dict[str, float]]]:
    runs: list[tuple[str, int, dict[str, float]]] = []
    tiny_path = build_tiny_model(tmp / "models")
    tiny = measure(tmp, "jerry-tiny", tiny_path, builtin_spec(), None, args.tokens, args.requests, args.rounds)
    title = (f"built-in jerry-tiny (hidden {DEFAULT_SHAPE.hidden}, {DEFAULT_SHAPE.layers} layers, "
             f"{tiny_path.stat().st_size // 1024} KiB)")
    runs.append((title, args.tokens, tiny))

    if args.hidden:
        shape = Shape(hidden=args.hidden, layers=args.layers, ffn=2 * args.hidden)
        name = f"jerry-bench-{shape.hidden}x{shape.layers}"
        big_path = build_tiny_model(tmp / "models" / f"{name}.gguf", shape)
        # Default OpenVINO properties (all cores), as a real model would run;
        # the same spec drives the in-process ContinuousBatching figure.
        spec = ModelSpec(path=str(big_path), default_max_tokens=args.large_tokens)
        reg = tmp / "bench-models.yaml"
        reg.write_text(f"models:\n  {name}:\n    path: {big_path}\n")
        big = measure(tmp, name, big_path, spec, str(reg), args.large_tokens, args.large_requests, args.rounds)
        title = (f"synthetic {name} (hidden {shape.hidden}, {shape.layers} layers, ffn {shape.ffn}, "
                 f"{big_path.stat().st_size // 1024} KiB)")
        runs.append((title, args.large_tokens, big))
    return runs


async def _scrape_while(base: str, stop: asyncio.Event) -> int:
    scrapes = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            (await client.get("/metrics")).raise_for_status()
            scrapes += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
    return scrapes


async def _short_requests_per_s(base: str, conc: int, per_client: int) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=httpx.Limits(max_connections=conc + 2)) as client:
        async def worker() -> None:
            for _ in range(per_client):
                r = await client.post("/v1/chat/completions", json={
                    "model": "jerry-tiny", "messages": MESSAGES, "max_tokens": 4, "ignore_eos": True})
                r.raise_for_status()

        await worker()  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return conc * per_client / (time.perf_counter() - t0)


def _round(base: str, scrape: bool, args: argparse.Namespace, models: tuple[str, ...]) -> dict[str, float]:
    async def run() -> dict[str, float]:
        stop = asyncio.Event()
        scraper = asyncio.create_task(_scrape_while(base, stop)) if scrape else None
        out: dict[str, float] = {}
        try:
            for model in models:
                tokens = args.tokens if model == "jerry-tiny" else args.large_tokens
                c1, ttfts, events = await run_concurrency(base, model, 1, args.requests, tokens)
                out[f"{model} c1"] = c1
                out[f"{model} ttft"] = statistics.median(ttfts) * 1000
                out[f"{model} events"] = events
                out[f"{model} c8"] = (await run_concurrency(base, model, 8, args.requests, tokens))[0]
            if models == ("jerry-tiny",):
                out["jerry-tiny rps"] = await _short_requests_per_s(base, 8, 4 * args.requests)
        finally:
            stop.set()
            if scraper is not None:
                await scraper
        return out

    return asyncio.run(run())


# What an A/B run compares: (label of A, label of B, B's env lines, models, does A get scraped,
# B's registry or None).
AB = {
    "metrics": ("metrics on", "off", {"OV_SERVER_METRICS": "0"}, ("jerry-tiny",), True, None),
    "detokenizer": ("vocab table", "model", {"OV_SERVER_DETOKENIZER": "model"}, ("jerry-tiny", "jerry-chat"), False,
                    None),
    "interval": ("interval 2 ms", "0 ms", {"OV_SERVER_STREAM_INTERVAL_MS": "0"}, ("jerry-tiny", "jerry-chat"), False,
                 None),
    "placement": ("one CPU", "all CPUs", {}, ("jerry-tiny",), False,
                  "models:\n  jerry-tiny:\n    builtin: jerry-tiny\n    cpus: all\n"),
}
LABELS = {"c1": "streamed tokens/s, concurrency 1", "ttft": "time to first token p50, c1 (ms)",
          "c8": "streamed tokens/s, concurrency 8", "rps": "4-token requests/s, concurrency 8",
          "events": "SSE content events per token, c1"}


def detokenizer_cost(rounds: int) -> None:
    """The HTTP process's per-token detokenizing cost alone, in this process (CPU time, so less
    sensitive to a busy machine than the served figures): real jerry-chat output, one token per
    feed as a c1 stream delivers it, through each detokenizer, alternating."""
    import openvino_genai as ov_genai

    from ov_server.bytevocab import ByteDetokenizer
    from ov_server.bytevocab import build as build_vocab
    from ov_server.chat_model import chat_model_path
    from ov_server.textproc import Detokenizer

    tok = ov_genai.Tokenizer(str(chat_model_path()))
    vocab, why = build_vocab(tok.get_vocab(), tok.decode)
    assert vocab is not None, why
    text = ("The lighthouse keeper climbed the spiral stairs every evening, counting the steps - "
            "one hundred and twelve - while the sea below turned from grey to black. ") * 20
    ids = [int(i) for i in tok.encode(text, add_special_tokens=False).input_ids.data[0]]
    costs: dict[str, list[float]] = {"table": [], "model": []}
    for _ in range(rounds):
        for name, make in (("table", lambda: ByteDetokenizer(vocab)),
                           ("model", lambda: Detokenizer(lambda xs: tok.decode(list(xs)) if xs else ""))):
            d = make()
            t0 = time.process_time()
            out = "".join(d.feed([i]) for i in ids) + d.flush()
            costs[name].append((time.process_time() - t0) / len(ids) * 1e6)
            assert out == tok.decode(ids)
    table, model = statistics.median(costs["table"]), statistics.median(costs["model"])
    print(f"detokenizing alone, jerry-chat, {len(ids)} tokens one by one, CPU time per token: "
          f"vocab table {table:.1f} us, tokenizer model {model:.1f} us, model/table {model / table:.1f}x")


def bench_ab(args: argparse.Namespace, which: str) -> int:
    """Two servers that differ in one setting, measured in alternating rounds (A, B, A, ...)."""
    label_a, label_b, env_b, models, scrape_a, registry_b = AB[which]
    if which == "detokenizer":
        detokenizer_cost(args.rounds)
    tmp = Path(tempfile.mkdtemp(prefix=f"ov-bench-{which}-"))
    load_before = os.getloadavg()[0]
    if registry_b is not None:
        (tmp / "b").mkdir(parents=True)
        (tmp / "b" / "models.yaml").write_text(registry_b)
        env_b = {**env_b, "OV_SERVER_REGISTRY": str(tmp / "b" / "models.yaml")}
    default = models != ("jerry-tiny",)  # jerry-chat is only in the default registry
    a = start_server(tmp / "a", default_models=default)
    b = start_server(tmp / "b", env_b, default_models=default)
    try:
        if which == "metrics":
            assert httpx.get(b.base + "/metrics").status_code == 404  # really off
        rounds: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
        for _ in range(args.rounds):
            rounds["a"].append(_round(a.base, scrape_a, args, models))
            rounds["b"].append(_round(b.base, False, args, models))
    finally:
        stop_server(a)
        stop_server(b)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in rounds.items()}
    print(f"{os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} alternating rounds, medians; {which}: {label_a} (A) vs {label_b} (B)")
    for key in med["a"]:
        model, figure = key.split(" ")
        tokens = args.tokens if model == "jerry-tiny" else args.large_tokens
        print(f"{model:10} {LABELS[figure]:34} ({tokens:3} tok): {label_a} {med['a'][key]:8.1f}   "
              f"{label_b} {med['b'][key]:8.1f}   A/B {med['a'][key] / med['b'][key]:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
