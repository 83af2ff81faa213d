"""Gateway overhead benchmark: the same trivial backend called directly and through LiteLLM.

    uv run python bench/bench_gateway.py [--rounds 3] [--quick] [--variants stock,+deps,...]

Starts a fast backend double (meshkit.testing.openai_double) and one gateway per variant, all on free
loopback ports, then drives each with `hey` (Debian package `hey`) at concurrency 1 and 32, in
interleaved rounds (direct, stock, ..., direct, stock, ...) so that load from anything else on
the machine hits every variant alike. Prints the median over rounds of p50/p99 latency and
requests/s, and what the gateway adds over the direct call. Nothing leaves 127.0.0.1.

Variants, each adding one thing to the previous, so the deltas say what each setting bought:
  stock      LiteLLM defaults: master_key only, 1 worker, default log level, and the
             environment of a plain install (opentelemetry-sdk and httptools hidden)
  +deps      + opentelemetry-sdk (stops a failing per-request import) + httptools (C HTTP parser)
  +auth      + our custom_auth (master-key compare, skips the virtual-key machinery)
  +settings  + the rest of config/router.yaml, LITELLM_LOG=ERROR, started by scripts/start.sh: our
             launcher and middleware (= the mesh, 1 worker)
  +2workers  + --workers 2 (the mesh's default on a 2-core host)
  cli        the mesh's settings and 2 workers under LiteLLM's own CLI, without our launcher and
             middleware (what start.sh ran before the launcher): compare with +2workers
  cli1       the same with 1 worker: compare with +settings (the launcher's and middleware's own
             cost, without uvicorn's multiprocess supervisor, which can keep `cli` from starting
             at all on a loaded host)
  +metrics   +settings (1 worker) + the Prometheus callback: what /metrics would cost; compare
             with +settings, not with the row above
Start-up (seconds from exec to the first 200 from /health/liveliness) is printed per variant; the
gateways start one after the other, so each start-up has the machine to itself (bar the others idling).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from meshkit.testing import free_port

SERVICE = Path(__file__).resolve().parents[1]
MASTER = "sk-bench-master-key"
BODY = '{"model":"jerry-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
ALL_VARIANTS = ["stock", "+deps", "+auth", "+settings", "+2workers", "cli", "cli1", "+metrics"]
DEFAULT_VARIANTS = ["stock", "+deps", "+auth", "+settings", "+2workers", "cli", "cli1"]
START_TIMEOUT_S = 300

# Makes the named packages look absent, to measure what a plain `pip install litellm[proxy]` gets.
HIDE_PACKAGES = '''
import sys
HIDDEN = ("httptools", "opentelemetry.sdk")
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by bench)", name=name)
        return None
sys.meta_path.insert(0, _Hide())
'''


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"bench: process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"bench: {url} did not come up within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def hey(url: str, concurrency: int, requests: int, auth: bool) -> dict[str, float]:
    cmd = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST", "-T", "application/json",
           "-d", BODY, "-t", "30"]
    if auth:
        cmd += ["-H", f"Authorization: Bearer {MASTER}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    status = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    bad = {code: int(count) for code, count in status if code != "200"}
    if bad or not status:
        raise SystemExit(f"bench: non-200 answers from {url}: {bad}\n{out}")

    def pct(p: str) -> float:
        return float(re.search(rf"{p}% in ([\d.]+) secs", out).group(1)) * 1000

    return {"p50": pct("50"), "p99": pct("99"), "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}


def variant_config(name: str, backend_port: int) -> tuple[dict, int]:
    """The config for a variant, and its worker count."""
    tuned = yaml.safe_load((SERVICE / "config" / "router.yaml").read_text())
    model_list = [{"model_name": "jerry-tiny", "litellm_params": {
        "model": "openai/jerry-tiny", "api_base": f"http://127.0.0.1:{backend_port}/v1", "api_key": "none"}}]
    stock = {"model_list": model_list, "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}
    if name in ("stock", "+deps"):
        return stock, 1
    if name == "+auth":
        cfg = copy.deepcopy(stock)
        cfg["general_settings"]["custom_auth"] = tuned["general_settings"]["custom_auth"]
        return cfg, 1
    cfg = copy.deepcopy(tuned)
    cfg["model_list"] = model_list
    cfg["router_settings"]["fallbacks"] = []
    if name in ("+settings", "cli1"):
        return cfg, 1
    if name in ("+2workers", "cli"):
        return cfg, 2
    if name == "+metrics":
        # One worker: with several, LiteLLM switches prometheus to multiprocess mode, and start-up
        # took over 120 s in that mode here. Compare it with +settings (also one worker).
        cfg["litellm_settings"]["callbacks"] = ["prometheus"]
        return cfg, 1
    raise SystemExit(f"bench: unknown variant {name!r}; known: {', '.join(ALL_VARIANTS)}")


def start_gateway(name: str, backend_port: int, tmp: Path) -> tuple[subprocess.Popen, str | None, float | None]:
    cfg, workers = variant_config(name, backend_port)
    port = free_port()
    slug = name.strip("+")
    cfg_path = tmp / f"{slug}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "LITELLM_MASTER_KEY": MASTER, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("LITELLM_LOG", None)
    if name in ("stock", "+deps", "+auth"):
        # LiteLLM's own CLI, default log level; only the offline switch is set.
        cmd = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(cfg_path),
               "--host", "127.0.0.1", "--port", str(port)]
    elif name in ("cli", "cli1"):
        env["LITELLM_LOG"] = "ERROR"
        cmd = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(cfg_path),
               "--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)]
        if name == "stock":
            hide = tmp / "hide"
            hide.mkdir(exist_ok=True)
            (hide / "sitecustomize.py").write_text(HIDE_PACKAGES)
            env["PYTHONPATH"] = str(hide)
    else:
        cmd = [str(SERVICE / "scripts" / "start.sh"), "--host", "127.0.0.1", "--port", str(port),
               "--config", str(cfg_path), "--workers", str(workers)]
    log = open(tmp / f"{slug}.log", "w")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=SERVICE)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=START_TIMEOUT_S)
    except SystemExit as exc:
        # LiteLLM's CLI with 2 workers can fail to start at all on a loaded host (its workers are
        # killed by uvicorn's 5 s health ping while they import LiteLLM): report it, go on.
        stop(proc)
        print(f"  {name}: {exc}", file=sys.stderr, flush=True)
        return proc, None, None
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions", time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--quick", action="store_true", help="fewer requests per round (smoke run)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from: {', '.join(ALL_VARIANTS)}")
    args = parser.parse_args()
    if not shutil.which("hey"):
        print("bench: needs `hey` (apt-get install -y hey)", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("bench: --rounds must be at least 1", file=sys.stderr)
        return 2
    n1, n32 = (100, 320) if args.quick else (300, 1600)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ALL_VARIANTS:
            print(f"bench: unknown variant {v!r}; known: {', '.join(ALL_VARIANTS)}", file=sys.stderr)
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    backend = subprocess.Popen([sys.executable, "-m", "meshkit.testing.openai_double", "--port", "0"], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    backend_port = int(backend.stdout.readline().split()[1])
    targets: dict[str, tuple[str, bool]] = {"direct": (f"http://127.0.0.1:{backend_port}/v1/chat/completions", False)}
    procs: list[subprocess.Popen] = [backend]
    samples: dict[str, dict[int, list[dict[str, float]]]] = {}
    startup: dict[str, float] = {}
    not_started: list[str] = []
    load_before = os.getloadavg()[0]
    try:
        wait_http(f"http://127.0.0.1:{backend_port}/health")
        for name in variants:
            proc, url, took = start_gateway(name, backend_port, tmp)
            procs.append(proc)
            if url is None:
                not_started.append(name)
                continue
            startup[name] = took
            targets[name] = (url, True)
            print(f"  started {name} in {took:.1f} s", file=sys.stderr, flush=True)
        for url, auth in targets.values():
            hey(url, 4, 200, auth)  # warm-up: lazy imports, connection pools, caches
        for r in range(args.rounds):
            for name, (url, auth) in targets.items():
                s = samples.setdefault(name, {1: [], 32: []})
                s[1].append(hey(url, 1, n1, auth))
                s[32].append(hey(url, 32, n32, auth))
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()[0]

    med = {name: {c: {k: statistics.median(x[k] for x in runs) for k in ("p50", "p99", "rps")}
                  for c, runs in s.items()} for name, s in samples.items()}
    d = med["direct"]
    print(f"\nGateway overhead vs the same backend called directly: {os.cpu_count()} cores, "
          f"median of {args.rounds} interleaved rounds (c=1: {n1} req, c=32: {n32} req per round), "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{'variant':<10}| {'c=1 p50':>7} {'p99':>6} {'+p50':>5} {'+p99':>6} {'req/s':>6} |"
          f" {'c=32 p50':>8} {'p99':>6} {'+p50':>6} {'+p99':>6} {'req/s':>6} {'vs stock':>8}")
    stock_rps = med.get("stock", {}).get(32, {}).get("rps")
    for name, r in med.items():
        a, b = r[1], r[32]
        ratio = f"{b['rps'] / stock_rps:7.2f}x" if stock_rps and name != "direct" else f"{'':>8}"
        print(f"{name:<10}| {a['p50']:7.1f} {a['p99']:6.1f} {a['p50'] - d[1]['p50']:5.1f} {a['p99'] - d[1]['p99']:6.1f}"
              f" {a['rps']:6.0f} | {b['p50']:8.1f} {b['p99']:6.1f} {b['p50'] - d[32]['p50']:6.1f}"
              f" {b['p99'] - d[32]['p99']:6.1f} {b['rps']:6.0f} {ratio}")
    print("ms; +p50/+p99 = added over calling the backend directly; vs stock = req/s at c=32 relative to stock")
    names = list(med)
    print("\nWhat each step bought (c=1 added p50, c=32 req/s):")
    steps = [(p, c) for p, c in zip(names[1:], names[2:]) if c not in ("+metrics", "cli", "cli1")
             and p not in ("cli", "cli1")]
    if "cli" in med and "+2workers" in med:
        steps.append(("cli", "+2workers"))
    if "cli1" in med and "+settings" in med:
        steps.append(("cli1", "+settings"))
    if "+metrics" in med and "+settings" in med:
        steps.append(("+settings", "+metrics"))
    for prev, cur in steps:
        print(f"  {cur:<10} (vs {prev:<9}) {med[cur][1]['p50'] - med[prev][1]['p50']:+6.2f} ms   "
              f"{med[cur][32]['rps'] - med[prev][32]['rps']:+7.0f} req/s")
    print("\nStart-up to /health/liveliness (s): " + ", ".join(f"{n} {t:.1f}" for n, t in startup.items()))
    for name in not_started:
        print(f"  {name}: did not answer within {START_TIMEOUT_S} s (not measured)")
    for ours, theirs in (("+2workers", "cli"), ("+settings", "cli1")):
        if ours in startup and theirs in startup:
            print(f"  launcher ({ours}) vs LiteLLM's CLI ({theirs}): {startup[ours] / startup[theirs]:.2f}x the CLI's "
                  "start-up time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
