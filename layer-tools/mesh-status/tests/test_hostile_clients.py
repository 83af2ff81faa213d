"""Hostile clients against the real server process, through the MCP SDK clients (2.x here, 1.x
from platform/testing/mcp1-client) and raw HTTP. For every case: the documented error shape (a
tool error with a readable, bounded message naming no file of ours; a JSON-RPC error or the
transport's 4xx), the same process still answers the next normal call, and when it stops
nothing is left running."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CMD, env_for, running_server, write_fake_view
from mcp import Client, StdioServerParameters
from test_mcp1_client import client_v1

pytestmark = pytest.mark.anyio

LEAKS = ("Traceback", "/root/", "/home/", "site-packages", "File \"")


def marked_pids(mark: str) -> list[int]:
    """Live processes whose environment carries MESH_STATUS_TEST_MARK=<mark>."""
    needle = f"\0MESH_STATUS_TEST_MARK={mark}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in b"\0" + (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(mark: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while marked_pids(mark):
        assert time.monotonic() < deadline, f"still running: {marked_pids(mark)}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, probe_port) -> Path:
    return write_fake_view(tmp_path_factory.mktemp("mesh"), probe_port)


@pytest.fixture(scope="module")
def server(mesh) -> Iterator[tuple[str, subprocess.Popen]]:
    mark = uuid.uuid4().hex
    with running_server({**env_for(mesh), "MESH_STATUS_TEST_MARK": mark}) as (base, proc):
        yield base, proc
    wait_gone(mark)


def assert_clean_tool_error(result, expected: str) -> None:
    assert result.is_error, result
    text = "\n".join(getattr(c, "text", "") for c in result.content)
    # Plain booleans: pytest's own explanation of a failed check on a 1 MB string takes ages.
    readable = expected in text and 0 < len(text) < 2000
    assert readable, text[:500]
    leaked = [leak for leak in LEAKS if leak in text]
    assert not leaked, (leaked, text[:500])


async def assert_still_serving(base: str) -> None:
    async with Client(f"{base}/mcp") as client:
        ok = await client.call_tool("service_health", {"service": "gw"})
    assert not ok.is_error and ok.structured_content["result"][0]["healthy"] is True


TOOL_CASES = [
    ("service_health", {"service": 123}, "service"),
    ("service_health", {"service": ["gw"]}, "service"),
    ("service_health", {"service": {"name": "gw"}}, "service"),
    ("service_health", {"service": "x" * 1_000_000}, "unknown service name 'xxxx"),
    ("service_health", {"service": "../../../etc/passwd"}, "unknown service name '../../../etc/passwd'"),
    ("service_health", {"service": "gw\x00\n"}, "unknown service name"),
    ("service_health", {"service": "cli"}, "has no HTTP health endpoint"),
    ("no_such_tool", {}, "Unknown tool"),
]


@pytest.mark.parametrize("tool, arguments, expected", TOOL_CASES)
async def test_bad_tool_calls_over_http(server, tool, arguments, expected):
    base, proc = server
    async with Client(f"{base}/mcp") as client:
        assert_clean_tool_error(await client.call_tool(tool, arguments), expected)
    await assert_still_serving(base)
    assert proc.poll() is None


async def test_extra_arguments_are_ignored_not_fatal(server):
    base, _ = server
    async with Client(f"{base}/mcp") as client:
        result = await client.call_tool("list_models", {"unexpected": "x" * 100_000})
    assert not result.is_error and "jerry-small" in str(result.structured_content)


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "0"}}}
RAW_CASES = [
    ("not JSON", {"content": b"{nope"}, 400, -32700),
    ("deeply nested array", {"content": b"[" * 200_000 + b"]" * 200_000}, 400, -32700),
    ("deeply nested object", {"content": b'{"a":' * 100_000 + b"1" + b"}" * 100_000}, 400, -32700),
    ("JSON array", {"content": b"[]"}, 400, -32602),
    ("call without a session", {"json": {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                         "params": {"name": "topology", "arguments": {}}}}, 400, -32600),
    ("5 MB body", {"content": b'{"x": "' + b"a" * 5_000_000 + b'"}'}, 413, None),
    ("text/plain body (cross-site form)", {"json": INIT, "headers": {**HEADERS, "Content-Type": "text/plain"}}, 400, None),
    ("DNS-rebinding Host", {"json": INIT, "headers": {**HEADERS, "Host": "rebind.evil.example"}}, 421, None),
    ("cross-site Origin", {"json": INIT, "headers": {**HEADERS, "Origin": "https://evil.example"}}, 403, None),
]


@pytest.mark.parametrize("what, kwargs, status, code", RAW_CASES, ids=[c[0] for c in RAW_CASES])
async def test_hostile_http_requests(server, what, kwargs, status, code):
    base, proc = server
    r = httpx.post(f"{base}/mcp", timeout=60, **{"headers": HEADERS, **kwargs})
    assert r.status_code == status, (what, r.status_code, r.text[:300])
    if code is not None:
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code and body["error"]["message"], body
    assert not any(leak in r.text for leak in LEAKS), r.text[:500]
    await assert_still_serving(base)
    assert proc.poll() is None


@pytest.mark.timeout(600)  # the first use syncs the 1.x client's environment
def test_mcp1_client_over_http(server, mesh):
    base, _ = server
    out = client_v1(env_for(mesh), "http", f"{base}/mcp", tool="service_health", args={"service": 7})
    assert out["is_error"] is True and "service" in out["text"] and not any(leak in out["text"] for leak in LEAKS), out
    ok = client_v1(env_for(mesh), "http", f"{base}/mcp", tool="service_health", args={"service": "gw"})
    assert ok["is_error"] is False and ok["structured"]["result"][0]["healthy"] is True


@pytest.mark.timeout(600)
def test_mcp1_client_over_stdio_leaves_nothing_running(mesh):
    mark = uuid.uuid4().hex
    env = {**env_for(mesh), "MESH_STATUS_TEST_MARK": mark}
    out = client_v1(env, "stdio", *CMD, "--transport", "stdio", tool="service_health", args={"service": "y" * 50_000})
    assert out["is_error"] is True and "unknown service name" in out["text"] and len(out["text"]) < 2000, out["text"][:300]
    wait_gone(mark)


async def test_sdk_client_over_stdio_leaves_nothing_running(mesh):
    mark = uuid.uuid4().hex
    params = StdioServerParameters(command=CMD[0], args=CMD[1:] + ["--transport", "stdio"],
                                   env={**env_for(mesh), "MESH_STATUS_TEST_MARK": mark})
    async with Client(params) as client:
        assert_clean_tool_error(await client.call_tool("service_health", {"service": "nope"}), "unknown service name 'nope'")
        ok = await client.call_tool("topology", {})
        assert not ok.is_error and ok.structured_content["mesh"] == "testmesh"
        assert len(marked_pids(mark)) == 1
    wait_gone(mark)
