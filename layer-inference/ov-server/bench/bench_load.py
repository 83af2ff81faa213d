"""What the conversion cache saves: jerry-chat's engine load, from its GGUF vs from the cached IR.

Run from the service folder:  CI=true uv run python bench/bench_load.py [--rounds 3]

Each load runs in a fresh process, as an engine start does (imports excluded from the figure,
measured separately): `engine_worker.load_pipeline` with jerry-chat's built-in spec, against
- gguf  : an empty model dir, so the GGUF is converted (model + tokenizer), i.e. every load before
          the cache existed, and the first load now (plus writing the IR);
- cached: the model dir after one conversion, so the IR is read.
Rounds alternate the two, so a machine busy with other work slows both alike; the figure is the
median per kind, and the ratio is computed from the same run. Also: the first answer after each
load (greedy, "What is the capital of France?"), which must be the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import ov_server, openvino_genai as g
from pathlib import Path
from ov_server.engine_worker import load_pipeline
from ov_server.model_files import resolve_model_path
from ov_server.registry import builtin_spec
imports = time.perf_counter() - t0
spec = builtin_spec("jerry-chat")
model_dir = Path(sys.argv[1])
path = resolve_model_path(spec, model_dir)
t0 = time.perf_counter()
pipe, info = load_pipeline("jerry-chat", spec, path, model_dir)
load = time.perf_counter() - t0
tok = g.Tokenizer(info["tokenizer_path"])
prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                 add_generation_prompt=True)
c = g.GenerationConfig(); c.max_new_tokens = 16; c.do_sample = False
ids = tok.encode(prompt, add_special_tokens=False).input_ids
out = pipe.generate([ids], [c])[0].m_generation_ids[0]
print(json.dumps({"imports": imports, "load": load, "cached": info["converted_from_cache"],
                  "answer": tok.decode(list(out))}))
"""


def run(model_dir: Path) -> dict:
    env = {**os.environ, "CI": "true"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(model_dir)], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        warm = root / "warm"
        first = run(warm)  # converts and writes the cache
        assert not first["cached"]
        results: dict[str, list[dict]] = {"gguf": [], "cached": []}
        for i in range(args.rounds):
            cold = root / f"cold-{i}"
            results["gguf"].append(run(cold))
            shutil.rmtree(cold)
            results["cached"].append(run(warm))
        assert all(r["cached"] for r in results["cached"]) and not any(r["cached"] for r in results["gguf"])
        med = {k: statistics.median(r["load"] for r in v) for k, v in results.items()}
        print(f"jerry-chat engine load, median of {args.rounds} alternating rounds (cpus: {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f}):")
        for k, v in results.items():
            loads = ", ".join(f"{r['load']:.2f}" for r in v)
            print(f"  {k:7s} {med[k]:6.2f} s   (each: {loads}; imports {statistics.median(r['imports'] for r in v):.2f} s)")
        print(f"  cached/gguf = {med['cached'] / med['gguf']:.2f}  (saved {med['gguf'] - med['cached']:.2f} s per engine start)")
        answers = {r["answer"] for v in results.values() for r in v} | {first["answer"]}
        print(f"  greedy answers after load: {sorted(answers)}" + ("" if len(answers) == 1 else "  <- DIFFER"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
