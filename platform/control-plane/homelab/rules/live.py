"""HL504 (`homelab check --live`): start every MCP tool's stdio command, as an agent would, and
compare what `tools/list` answers with the contract's `mcp.tools` (names, input names and types).

The registry agents read is rendered from the contracts, so a server that disagrees with its
contract fails at an agent's first call. This speaks MCP's stdio transport directly (newline-
delimited JSON-RPC: initialize, notifications/initialized, tools/list) so the control plane
needs no MCP SDK. Slow (a process per tool), so it is not part of the plain `check`.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from homelab.load.repo import Repo, Service
from homelab.render.view import VIEW
from homelab.runtime.prepare import clean_env
from homelab.rules.base import Violation

PROTOCOL = "2025-06-18"
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")


class ProbeError(Exception):
    pass


def _read_reply(proc: subprocess.Popen[bytes], want_id: int, deadline: float) -> dict[str, Any]:
    """The JSON-RPC response with `want_id` (notifications and log lines before it are skipped)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    raise ProbeError(f"wrote a non-JSON line to stdout: {line[:120]!r} (stdio "
                                     "servers must log to stderr)") from None
                if isinstance(msg, dict) and msg.get("id") == want_id:
                    if "error" in msg:
                        raise ProbeError(f"answered an error: {msg['error']}")
                    return msg.get("result") or {}
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProbeError("did not answer in time")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise ProbeError(f"exited (code {proc.wait(5)}) before answering")
            buf += chunk
    finally:
        sel.close()


def list_tools(command: list[str], cwd: str, timeout_s: float = 180.0,
               env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Start `command` and return its `tools/list` answer (all pages)."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(command, cwd=cwd, env={**clean_env(), **(env or {})},
                                    stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        except OSError as exc:
            raise ProbeError(f"could not start: {exc.strerror or exc}") from None
        assert proc.stdin is not None
        deadline = time.monotonic() + timeout_s

        def send(msg: dict[str, Any]) -> None:
            proc.stdin.write(json.dumps(msg).encode() + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        try:
            send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                             "clientInfo": {"name": "homelab-check", "version": "1"}}})
            _read_reply(proc, 1, deadline)
            send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            tools: list[dict[str, Any]] = []
            cursor, request_id = None, 2
            while True:
                send({"jsonrpc": "2.0", "id": request_id, "method": "tools/list",
                      "params": {"cursor": cursor} if cursor else {}})
                page = _read_reply(proc, request_id, deadline)
                tools += page.get("tools", [])
                cursor, request_id = page.get("nextCursor"), request_id + 1
                if not cursor:
                    return tools
        except (ProbeError, BrokenPipeError) as exc:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            why = str(exc) if isinstance(exc, ProbeError) else "closed its stdin"
            raise ProbeError(why + (f"; stderr: {' | '.join(tail)}" if tail else "")) from None
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=5)


def _types(prop: dict[str, Any]) -> set[str]:
    found = {prop["type"]} if isinstance(prop.get("type"), str) else set(prop.get("type") or [])
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        found |= _types(option)
    return found


def compare(svc: Service, tools: list[dict[str, Any]]) -> Iterator[Violation]:
    """Violations where the listed tools differ from the contract (pure)."""
    assert svc.spec.mcp is not None
    src = svc.source
    served = {t.get("name"): t for t in tools}
    declared = [t.name for t in svc.spec.mcp.tools]
    for name in sorted(set(served) - set(declared)):
        yield Violation(src.path, src.line("mcp", "tools"), "HL504", "mcp-tools-mismatch",
                        f"{svc.name}'s server lists tool {name!r}, which the contract does not declare")
    for i, tool in enumerate(svc.spec.mcp.tools):
        line = src.line("mcp", "tools", i, "name")
        live = served.get(tool.name)
        if live is None:
            yield Violation(src.path, line, "HL504", "mcp-tools-mismatch",
                            f"{svc.name}'s server does not list the contract's tool {tool.name!r} "
                            f"(it lists: {', '.join(sorted(map(str, served))) or 'nothing'})")
            continue
        props = (live.get("inputSchema") or {}).get("properties") or {}
        line = src.line("mcp", "tools", i, "inputs") or line
        if set(props) != set(tool.inputs):
            yield Violation(src.path, line, "HL504", "mcp-tools-mismatch",
                            f"{svc.name}: tool {tool.name} takes inputs {sorted(props)} but the "
                            f"contract declares {sorted(tool.inputs)}")
            continue
        for param, meaning in tool.inputs.items():
            word = meaning.replace(",", " ").replace(":", " ").split()[:1]
            if word and word[0] in JSON_TYPES and word[0] not in _types(props[param]):
                yield Violation(src.path, line, "HL504", "mcp-tools-mismatch",
                                f"{svc.name}: tool {tool.name} input {param!r} is "
                                f"{'/'.join(sorted(_types(props[param]))) or 'untyped'} in the "
                                f"server but {word[0]} in the contract")


def _check_one(repo: Repo, svc: Service) -> list[Violation]:
    mcp, src = svc.spec.mcp, svc.source
    assert mcp is not None
    if not mcp.stdio_command:
        return []  # HL503 already says a stdio command is missing
    try:
        # A tool reads the mesh from the view, as under `homelab up` (mesh-status refuses to
        # start without one).
        tools = list_tools(list(mcp.stdio_command), str(repo.root / svc.rel_dir),
                           env={"HOMELAB_MESH_VIEW": str(repo.root / VIEW)})
    except ProbeError as exc:
        return [Violation(src.path, src.line("mcp", "stdio_command"), "HL504", "mcp-tools-mismatch",
                          f"{svc.name}: `{' '.join(mcp.stdio_command)}` {exc}")]
    return list(compare(svc, tools))


def check(repo: Repo) -> list[Violation]:
    tools = repo.by_kind("mcp-tool")
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(tools)))) as pool:
        found = [v for vs in pool.map(lambda s: _check_one(repo, s), tools) for v in vs]
    return sorted(found, key=lambda v: (v.path, v.line or 0, v.message))
