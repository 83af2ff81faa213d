"""Gateway overhead benchmark: the same trivial backend called directly and through LiteLLM.

    uv run python bench/bench_gateway.py [--quick] [--variants stock,tuned,...]

Starts a fast backend double (tests/doubles/backend.py), then one gateway per variant on free
loopback ports, and drives each with `hey` (Debian package `hey`) at concurrency 1 and 32.
Prints p50/p99 latency, requests/s, and the overhead the gateway adds over the direct call,
all measured in this one run so the ratios are comparable. Nothing leaves 127.0.0.1.

Variants (each adds one thing to the previous, so the deltas say what each setting bought):
  stock          master_key only, LiteLLM defaults (1 worker)
  +auth          + our custom_auth (master-key compare, skips virtual-key machinery)
  +settings      + the rest of config/router.yaml (no retries, quiet logs, no spend/error logs)
                 = the mesh's tuned config, 1 worker
  +2workers      + --workers 2 (the mesh's setting on a 2-core host)
  +metrics       + the Prometheus callback (what /metrics costs)
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

SERVICE = Path(__file__).resolve().parents[1]
DOUBLE = SERVICE / "tests" / "doubles" / "backend.py"
MASTER = "sk-bench-master-key"
BODY = '{"model":"jerry-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
ALL_VARIANTS = ["stock", "+auth", "+settings", "+2workers", "+metrics"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    if bad:
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
    if name == "stock":
        return stock, 1
    if name == "+auth":
        cfg = copy.deepcopy(stock)
        cfg["general_settings"]["custom_auth"] = tuned["general_settings"]["custom_auth"]
        return cfg, 1
    cfg = copy.deepcopy(tuned)
    cfg["model_list"] = model_list
    cfg["router_settings"]["fallbacks"] = []
    if name == "+settings":
        return cfg, 1
    if name == "+2workers":
        return cfg, 2
    if name == "+metrics":
        cfg["litellm_settings"]["callbacks"] = ["prometheus"]
        return cfg, 2
    raise SystemExit(f"bench: unknown variant {name!r}; known: {', '.join(ALL_VARIANTS)}")


def start_gateway(name: str, cfg: dict, workers: int, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg_path = tmp / f"{name.strip('+')}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "LITELLM_MASTER_KEY": MASTER, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "OV_SERVER_API_KEY": "none", "OPTILLM_PROXY_KEY": "none"}
    if name in ("stock", "+auth"):
        # Stock: LiteLLM's own CLI and default log level, only the offline switch set.
        env.pop("LITELLM_LOG", None)
        cmd = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(cfg_path),
               "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [str(SERVICE / "scripts" / "start.sh"), "--host", "127.0.0.1", "--port", str(port),
               "--config", str(cfg_path), "--workers", str(workers)]
    log = open(tmp / f"{name.strip('+')}.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=SERVICE)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness")
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    args = parser.parse_args()
    if not shutil.which("hey"):
        print("bench: needs `hey` (apt-get install -y hey)", file=sys.stderr)
        return 2
    n1, n32 = (200, 600) if args.quick else (1000, 4000)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    backend = subprocess.Popen([sys.executable, str(DOUBLE), "--port", "0"], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    backend_port = int(backend.stdout.readline().split()[1])
    wait_http(f"http://127.0.0.1:{backend_port}/health")
    results: dict[str, dict[int, dict[str, float]]] = {}
    try:
        direct = f"http://127.0.0.1:{backend_port}/v1/chat/completions"
        hey(direct, 4, 200, auth=False)  # warm-up
        results["direct"] = {1: hey(direct, 1, n1, False), 32: hey(direct, 32, n32, False)}
        for name in variants:
            cfg, workers = variant_config(name, backend_port)
            proc, port = start_gateway(name, cfg, workers, tmp)
            try:
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                hey(url, 4, 200, auth=True)  # warm-up: imports, connection pools, caches
                results[name] = {1: hey(url, 1, n1, True), 32: hey(url, 32, n32, True)}
            finally:
                stop(proc)
            print(f"  measured {name}", file=sys.stderr, flush=True)
    finally:
        stop(backend)
        shutil.rmtree(tmp, ignore_errors=True)

    d = results["direct"]
    print(f"\nGateway overhead vs direct backend ({os.cpu_count()} cores; c=1: {n1} req, c=32: {n32} req)")
    print(f"{'variant':<11}| {'c=1 p50':>8} {'p99':>7} {'+p50':>6} {'+p99':>6} {'req/s':>7} |"
          f" {'c=32 p50':>8} {'p99':>7} {'+p50':>6} {'+p99':>7} {'req/s':>7} {'x stock':>7}")
    stock_rps = results.get("stock", {}).get(32, {}).get("rps")
    for name, r in results.items():
        a, b = r[1], r[32]
        ratio = f"{b['rps'] / stock_rps:7.2f}" if stock_rps and name != "direct" else f"{'':>7}"
        print(f"{name:<11}| {a['p50']:8.1f} {a['p99']:7.1f} {a['p50'] - d[1]['p50']:6.1f} {a['p99'] - d[1]['p99']:6.1f}"
              f" {a['rps']:7.0f} | {b['p50']:8.1f} {b['p99']:7.1f} {b['p50'] - d[32]['p50']:6.1f}"
              f" {b['p99'] - d[32]['p99']:7.1f} {b['rps']:7.0f} {ratio}")
    print("(ms; +p50/+p99 = added over calling the backend directly; x stock = req/s at c=32 / stock's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
