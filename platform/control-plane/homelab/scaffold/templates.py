"""Text of the files a new service starts with. Placeholders are marked TODO for the author."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

SERVICE_PROSE = """
# {name}

{description}

Kind: **{kind}**, layer `{layer}`, host `{host}`{where}. Created by `homelab new`; the front matter
above is the contract every tool reads: edit it, then run `uv run homelab render` and
`uv run homelab check`.

## Run
`{command}` from this folder (env from `{env_file}`).

## Health
{health}

## Env
{env_text}
"""

ARCHITECTURE = """# {name}: architecture

## Role in the mesh
{role}

## Internals
TODO: describe the modules and the request flow once the service does real work.
"""

AGENTS = """# AGENTS.md: working on {name}

- Contract: `SERVICE_SPEC.md` front matter. Port {port_text} comes from `mesh/ports.yaml` and never
  changes; exposure changes need an approval in `mesh/approvals.yaml`.
- After editing the contract: `uv run homelab render && uv run homelab check` from the repo root.
- Tests: `uv run pytest -q` here (or `./homelab test {name}` from the root).
- Python through uv only: add dependencies with `uv add`, commit `uv.lock`.
"""

PYPROJECT = """[project]
name = "{name}"
version = "0.1.0"
description = "{description}"
requires-python = ">=3.11,<3.12"
dependencies = []

[project.scripts]
{name} = "{package}.__main__:main"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""

UV_LOCK = """version = 1
revision = 3
requires-python = "==3.11.*"

[[package]]
name = "{name}"
version = "0.1.0"
source = {{ editable = "." }}
"""

# A stdlib-only starting point: answers health (and, for backends, /v1/models) so the mesh's
# probes pass; chat returns 501 until the author puts real work behind it.
MAIN = '''"""{name}: starting point created by `homelab new`. Replace the 501 with real work."""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = {models!r}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health":
            self._send(200, {{"status": "ok"}})
        elif self.path == "/v1/models" and MODELS:
            self._send(200, {{"object": "list", "data": [{{"id": m, "object": "model"}} for m in MODELS]}})
        else:
            self._send(404, {{"error": {{"message": f"no route {{self.path}}", "type": "not_found"}}}})

    def do_POST(self) -> None:  # noqa: N802
        self._send(501, {{"error": {{"message": "not implemented yet", "type": "not_implemented"}}}})


def main() -> None:
    parser = argparse.ArgumentParser(prog="{name}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
'''

TEST = '''"""Starting test created by `homelab new`: the contract's health endpoint answers."""

import json
import socket
import subprocess
import sys
import time
import urllib.request


def test_health_answers() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "{package}", "--port", str(port)])
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{{port}}/health", timeout=1) as r:
                    assert json.load(r) == {{"status": "ok"}}
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("health endpoint never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
'''


def _compact(node: Any) -> Any:
    """Short lists of scalars and small flat mappings in flow style, like hand-written contracts."""
    scalar = lambda v: not isinstance(v, (dict, list))  # noqa: E731
    if isinstance(node, list):
        seq = CommentedSeq(_compact(v) for v in node)
        if all(scalar(v) for v in node):
            seq.fa.set_flow_style()
        return seq
    if isinstance(node, dict):
        out = CommentedMap((k, _compact(v)) for k, v in node.items())
        if 0 < len(node) <= 3 and all(scalar(v) for v in node.values()):
            out.fa.set_flow_style()
        return out
    return node


def front_matter(contract: dict[str, Any]) -> str:
    contract = _compact(contract)
    y = YAML(typ="rt")
    y.default_flow_style = False
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(contract, buf)
    return f"---\n{buf.getvalue()}---\n"
