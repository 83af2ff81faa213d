"""Text of the files a new service starts with: a working server per kind (skeletons/), its test,
its docs and its uv project. Nothing here is a placeholder: every file is true of the service as
written, so `homelab check` passes at once and the author replaces working code, not TODOs."""

from __future__ import annotations

import io
from importlib import resources
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

# skeleton template -> path in the service folder ({package} filled in)
SKELETONS: dict[str, dict[str, str]] = {
    "backend": {"server.py": "src/{package}/server.py", "main.py": "src/{package}/__main__.py",
                "test.py": "tests/test_{package}.py"},
    "optimizer": {"server.py": "src/{package}/server.py", "main.py": "src/{package}/__main__.py",
                  "test.py": "tests/test_{package}.py"},
    "client": {"client.py": "src/{package}/client.py", "server.py": "src/{package}/server.py",
               "main.py": "src/{package}/__main__.py", "test.py": "tests/test_{package}.py"},
    "mcp-tool": {"server.py": "src/{package}/server.py", "main.py": "src/{package}/__main__.py",
                 "test.py": "tests/test_{package}.py"},
}


def skeleton(kind: str, package: str, tokens: dict[str, str]) -> dict[str, str]:
    """{relative path: text} of a kind's source and test files, tokens (`__NAME__` ...) filled."""
    folder = resources.files("homelab.scaffold") / "skeletons" / kind
    out = {}
    for template, target in SKELETONS[kind].items():
        text = (folder / f"{template}.tmpl").read_text(encoding="utf-8")
        for token, value in tokens.items():
            text = text.replace(token, value)
        out[target.format(package=package)] = text
    return out


SERVICE_PROSE = """
# {name}

{description}

Kind: **{kind}**, layer `{layer}`, host `{host}`{where}. Created by `homelab new`; the front matter
above is the contract every tool reads: edit it, then run `uv run homelab render` and
`uv run homelab check`.

## What it does now
{does}

## Run
`{command}` from this folder (env from `{env_file}`); under the mesh, `uv run homelab up`
starts it and `uv run homelab restart {name}` restarts it.

## Health
{health}

## Env
{env_text}

## Tests
`uv run pytest -q` here, or `./homelab test {name}` from the repo root (the contract's `test:`).
"""

DOES = {
    "backend": "Answers the mesh's backend API (`GET /health`, `GET /v1/models` listing the upstream "
               "ids the gateway sends, `POST /v1/chat/completions`, streamed or not) by echoing the "
               "last user message, with OpenAI-shaped errors{auth}. Replace `answer()` in "
               "`src/{package}/server.py` with real inference.",
    "optimizer": "Receives each alias as `<approach>-<target>` from the gateway and calls the gateway "
                 "back with the plain `<target>` name, passing the request through unchanged{auth}. "
                 "Put the approach in `apply()` in `src/{package}/server.py`.",
    "client": "`uv run {name} ask QUESTION` asks the gateway one question (model and base URL from "
              "its env); `serve` is the same over HTTP (`POST /ask`). Replace `ask()` in "
              "`src/{package}/client.py` with the client's real work.",
    "mcp-tool": "An MCP server (stdio, and streamable HTTP on `/mcp` with `GET /health`) whose tools "
                "({tools}) each repeat a text and return it with its length: a working starting point "
                "with typed inputs. Replace `repeat_text` in `src/{package}/server.py`, then make the "
                "contract's `mcp.tools` say what the real tools do (`homelab check --live` compares "
                "them with the server).",
}

ARCHITECTURE = """# {name}: architecture

## Role in the mesh
{role}

## Modules
{modules}

## Request flow
{flow}
"""

MODULES = {
    "backend": "- `src/{package}/server.py`: the HTTP server (stdlib), request validation, the key check, "
               "`answer()`.\n- `src/{package}/__main__.py`: the command line (`--host`, `--port`).\n"
               "- `tests/test_{package}.py`: the real process on a free port.",
    "optimizer": "- `src/{package}/server.py`: the HTTP server (stdlib), `apply()` (the approach) and "
                 "`complete()` (one call back to the gateway).\n- `src/{package}/__main__.py`: the command "
                 "line.\n- `tests/test_{package}.py`: the real process in front of a stand-in gateway.",
    "client": "- `src/{package}/client.py`: `ask()`, one chat completion through the gateway.\n"
              "- `src/{package}/server.py`: HTTP mode.\n- `src/{package}/__main__.py`: `ask` and `serve`.\n"
              "- `tests/test_{package}.py`: against a stand-in gateway.",
    "mcp-tool": "- `src/{package}/server.py`: the MCP server (`MCPServer` of the pinned SDK), its tools "
                "and `GET /health`.\n- `src/{package}/__main__.py`: `--transport stdio|streamable-http`.\n"
                "- `tests/test_{package}.py`: the MCP SDK client over stdio and HTTP.",
}

FLOW = {
    "backend": "gateway -> `POST /v1/chat/completions` (model = an upstream id) -> validate -> "
               "`answer()` -> JSON, or SSE chunks ending in `data: [DONE]`.",
    "optimizer": "gateway -> `POST /v1/chat/completions` (model = `<approach>-<target>`) -> `apply()` -> "
                 "gateway (model = `<target>`) -> backend; the answer goes back under the alias name.",
    "client": "`ask()` -> gateway `POST /v1/chat/completions` -> the backend behind the public name.",
    "mcp-tool": "agent -> MCP `tools/call` (stdio, or `POST /mcp`) -> the tool function -> structured "
                "result, or a tool error (`isError`) saying why.",
}

ROLE = {
    "backend": "A backend the gateway routes to under the public names in the contract's `models`.",
    "optimizer": "An optimization proxy behind the gateway, on loopback only; it calls the gateway "
                 "back with the plain model name.",
    "client": "A client: it calls the gateway only, with base URL and model from its env.",
    "mcp-tool": "An MCP tool server, separate from the LLM gateway, listed in layer-tools/registry.yaml "
                "for agents.",
}

AGENTS = """# AGENTS.md: working on {name}

- Contract: `SERVICE_SPEC.md` front matter. {port_text} Exposure changes need a reviewed
  approval in `mesh/approvals.yaml`.
- After editing the contract: `uv run homelab render && uv run homelab check` from the repo root.
- Tests: `uv run pytest -q` here, or `./homelab test {name}` from the root. Keep them calling the
  real process (a free port, or stdio), as the starting ones do.
- Running: `uv run homelab up` (whole mesh), `uv run homelab restart {name}` after a change,
  `uv run homelab logs {name}` when it does not come up.
- Python through uv only: add dependencies with `uv add` (exact pins for risky ones), commit
  `uv.lock`.
"""

PYPROJECT = """[project]
name = "{name}"
version = "0.1.0"
description = "{description}"
requires-python = ">=3.11,<3.12"
dependencies = [{dependencies}]

[project.scripts]
{name} = "{package}.__main__:main"

[dependency-groups]
dev = [{dev}]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-ra"
"""

# A lock without dependencies: what `homelab new --no-lock` writes (the synthetic meshes of the
# control plane's own tests); a real scaffold is locked with `uv lock`.
UNLOCKED = """version = 1
revision = 3
requires-python = "==3.11.*"

[[package]]
name = "{name}"
version = "0.1.0"
source = {{ editable = "." }}
"""


def deps_list(pins: list[str]) -> str:
    return ", ".join(f'"{p}"' for p in pins)


BLOCK_KEYS = {"run", "client", "mcp"}  # sections hand-written contracts keep in block style


def _compact(node: Any, key: str | None = None) -> Any:
    """Lists of scalars and small mappings of scalars (or of lists of scalars) in flow style,
    like hand-written contracts: `- {name: X, secret: true, file: ...}`."""
    scalar = lambda v: not isinstance(v, (dict, list))  # noqa: E731
    flat = lambda v: scalar(v) or (isinstance(v, list) and all(map(scalar, v)))  # noqa: E731
    if isinstance(node, list):
        seq = CommentedSeq(_compact(v) for v in node)
        if all(scalar(v) for v in node):
            seq.fa.set_flow_style()
        return seq
    if isinstance(node, dict):
        out = CommentedMap((k, _compact(v, k)) for k, v in node.items())
        if 0 < len(node) <= 6 and key not in BLOCK_KEYS and all(flat(v) for v in node.values()):
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
