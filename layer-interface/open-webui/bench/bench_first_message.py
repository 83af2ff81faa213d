"""How big is the prompt of a first message from Open WebUI, before and after this service's
configuration? Prints figures; asserts nothing.

Reads the captured requests (tests/captured/first-message.before.json: Open WebUI 0.12.4's
defaults, 36 built-in tools; first-message.json: this contract's env) and counts, for the chat
request: body bytes, tools, and prompt tokens as ov-server builds them (chat template with the
tools, then its tokenizer) for jerry-tiny (built here) and any --model GGUF/IR given, e.g. the
SmolLM2 GGUF behind jerry-chat.

    python bench/bench_first_message.py [--model PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICE = HERE.parent
OV_SERVER = SERVICE.parents[1] / "layer-inference" / "ov-server"
SHAPES = {"before (0.12.4 defaults)": "first-message.before.json", "after (contract env)": "first-message.json"}


def chat_body(name: str) -> dict:
    requests = json.loads((SERVICE / "tests" / "captured" / name).read_text())["requests"]
    return next(r["body"] for r in requests if r["purpose"] == "chat")


def in_ov_server(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(["uv", "run", "--project", str(OV_SERVER), "--frozen", *args], cwd=SERVICE, env=env,
                          check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="extra model (GGUF file or IR folder)")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="owui-bench-") as tmp:
        files = {}
        for label, name in SHAPES.items():
            body = chat_body(name)
            files[label] = Path(tmp) / name
            files[label].write_text(json.dumps(body))
            tools = body.get("tools") or []
            print(f"{label}: body {len(json.dumps(body)):,} bytes, {len(tools)} tools "
                  f"({len(json.dumps(tools)):,} bytes), messages {[m['role'] for m in body['messages']]}")
        in_ov_server("ov-server", "build-tiny-model", tmp)
        models = [str(next(Path(tmp).glob("*.gguf"))), *args.model]
        for model in models:
            out = in_ov_server("python", str(HERE / "prompt_tokens.py"), model, *map(str, files.values()))
            for label, line in zip(files, out.splitlines()):
                row = json.loads(line)
                print(f"  {Path(model).name}: {label}: {row['prompt_tokens']:,} prompt tokens "
                      f"({row['prompt_chars']:,} chars after the chat template)")


if __name__ == "__main__":
    main()
