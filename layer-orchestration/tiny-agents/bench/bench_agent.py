"""How often the agent answers mesh questions correctly on the real model (jerry-chat).

Starts the same all-real mesh as tests/test_agent_real_model.py (ov-server + LiteLLM +
mesh-status, tests/realmesh.py), asks each fixed question once through `tiny-agents run --json`,
and prints per question the tools called and whether the answer says what the mesh's state says
(lower-case substrings, realmesh.QUESTIONS), then the share answered correctly and the share whose
first call was a tool that holds the answer. Figures, not assertions: a 135M model is weak.

    uv run python bench/bench_agent.py [--max-steps 4] [--servers default]

`--servers default` offers every registry server, as a user's `tiny-agents run` does (mesh-status
and web-fetch, whose network is cut: tests/offline_web_fetch.py); it also counts `fetch` calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import agent_env, run_agent
from realmesh import MODEL, QUESTIONS, correct, real_mesh

# The tool whose result answers each question (list_models and topology cover names and places).
RIGHT_TOOL = ["service_health", "service_health", "service_health", "list_models", "list_models", "list_models",
              "topology", "topology", "topology", "topology", "topology", "service_health"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--servers", default="mesh-status",
                    help="registry servers to offer (comma-separated), or `default`: all, as `tiny-agents run` does")
    args = ap.parse_args()
    with real_mesh(Path(tempfile.mkdtemp(prefix="bench-agent-"))) as mesh:
        env = agent_env(mesh, TINYAGENTS_MODEL=MODEL)
        servers = [] if args.servers == "default" else ["--servers", args.servers]
        right = right_tool = failed = fetches = fetch_runs = 0
        t0 = time.perf_counter()
        for (question, expected), tool in zip(QUESTIONS, RIGHT_TOOL, strict=True):
            t = time.perf_counter()
            proc = run_agent(mesh, "run", "--json", *servers, "--max-steps", str(args.max_steps),
                             question, env=env, timeout=600)
            if proc.returncode != 0:
                failed += 1
                print(f"FAIL  {question!r}: exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
                continue
            out = json.loads(proc.stdout)
            ok = correct(out["answer"], expected)
            first = out["tool_calls"][0]["name"] if out["tool_calls"] else None
            n_fetch = sum(c["name"] == "fetch" for c in out["tool_calls"])
            fetches, fetch_runs = fetches + n_fetch, fetch_runs + (n_fetch > 0)
            right += ok
            right_tool += first == tool
            calls = ", ".join(f"{c['name']}{json.dumps(c['arguments'])}" for c in out["tool_calls"])
            print(f"{'ok   ' if ok else 'wrong'} {question!r} ({time.perf_counter() - t:.1f} s, {out['steps']} steps) "
                  f"calls: {calls or '-'}\n      answer: {out['answer'][:160]!r}")
        n = len(QUESTIONS)
        print(f"\nmodel {MODEL}, servers {args.servers}: answered correctly {right}/{n} = {right / n:.0%}; first call the right tool "
              f"{right_tool}/{n} = {right_tool / n:.0%}; runs calling fetch {fetch_runs}/{n} ({fetches} calls); failed runs {failed}; {time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
