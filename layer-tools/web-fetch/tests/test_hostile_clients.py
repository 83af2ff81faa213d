"""Hostile clients against the real server process, through the MCP SDK clients (2.x in this
environment, 1.x from platform/testing/mcp1-client) and raw HTTP. For every case: the error
has its documented shape (a tool error with a readable, bounded message that names no file of
ours; a JSON-RPC error or the transport's 4xx), the same process still answers the next normal
call, and when the server stops nothing it started is left running."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import CMD, alive, marked_pids, server_env, wait_gone
from mcp import Client, StdioServerParameters
from test_mcp1_client import client_v1

from meshkit.testing import ServerProcess, free_port

pytestmark = pytest.mark.anyio

LEAKS = ("Traceback", "/work/", "/root/", "/home/", "site-packages", ".py\"", ".py,", "File \"")


@dataclass(frozen=True)
class Server:
    base: str
    proc: subprocess.Popen
    mark: str


def start(mark: str, **env: str) -> Server:
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="web-fetch-hostile-")) / "server.log"
    server = ServerProcess.start("web-fetch", CMD + ["--transport", "streamable-http", "--port", str(port)],
                                 log=log, port=port, timeout=60,
                                 env=server_env(WEB_FETCH_ALLOW="127.0.0.1", WEB_FETCH_TEST_MARK=mark, **env))
    return Server(server.base, server.popen, mark)


def stop_and_check_nothing_left(server: Server) -> None:
    server.proc.terminate()
    server.proc.wait(timeout=20)
    wait_gone(marked_pids(server.mark))  # the extraction workers went with it


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start(uuid.uuid4().hex)
    yield s
    stop_and_check_nothing_left(s)


def assert_clean_tool_error(result, expected: str) -> None:
    assert result.is_error, result
    text = "\n".join(getattr(c, "text", "") for c in result.content)
    # Plain booleans: pytest's own explanation of a failed check on a 1 MB string takes ages.
    readable = expected in text and 0 < len(text) < 2000
    assert readable, text[:500]
    leaked = [leak for leak in LEAKS if leak in text]
    assert not leaked, (leaked, text[:500])


async def assert_still_serving(base: str, site: str) -> None:
    async with Client(f"{base}/mcp") as client:
        ok = await client.call_tool("fetch", {"url": f"{site}/article"})
    assert not ok.is_error and "Pelican-unique-marker-7731" in ok.structured_content["text"]


TOOL_CASES = [
    ({"url": 123}, "url"),
    ({"url": None}, "url"),
    ({"url": ["http://127.0.0.1/"]}, "url"),
    ({"url": {"href": "x"}}, "url"),
    ({}, "url"),
    ({"url": "http://127.0.0.1:9/", "max_chars": "ten"}, "max_chars"),
    ({"url": "http://127.0.0.1:9/", "max_chars": -5}, "max_chars must be a positive integer"),
    ({"url": "h" * 1_000_000}, "longer than 8192 characters"),
    ({"url": "http://127.0.0.1:65536/"}, "port 65536 is out of range"),
    ({"url": "http://xn--zz.example/"}, "is not valid IDNA"),
    ({"url": "http://bad host.example/"}, "is not a valid host name"),
    ({"url": "gopher://127.0.0.1/"}, "unsupported url scheme 'gopher'"),
    ({"url": "http://10.0.0.1/admin"}, "blocked address: 10.0.0.1 is private"),
    ({"url": "http://[::ffff:169.254.169.254]/"}, "cloud-metadata"),
]


@pytest.mark.parametrize("arguments, expected", TOOL_CASES)
async def test_bad_tool_calls_over_http(server, site, arguments, expected):
    async with Client(f"{server.base}/mcp") as client:
        assert_clean_tool_error(await client.call_tool("fetch", arguments), expected)
    await assert_still_serving(server.base, site)
    assert server.proc.poll() is None


async def test_unknown_tool(server, site):
    async with Client(f"{server.base}/mcp") as client:
        assert_clean_tool_error(await client.call_tool("no_such_tool", {"url": "x"}), "Unknown tool")
    await assert_still_serving(server.base, site)


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "0"}}}
RAW_CASES = [
    # (what, request kwargs, status, JSON-RPC error code or None for the transport's plain answer)
    ("not JSON", {"content": b"{nope"}, 400, -32700),
    ("deeply nested array", {"content": b"[" * 200_000 + b"]" * 200_000}, 400, -32700),
    ("deeply nested object", {"content": b'{"a":' * 100_000 + b"1" + b"}" * 100_000}, 400, -32700),
    ("invalid UTF-8", {"content": b'{"jsonrpc": "2.0", "id": 1, "method": "\xff"}'}, 400, -32700),
    ("JSON array", {"content": b"[]"}, 400, -32602),
    ("params of the wrong type", {"json": {**INIT, "params": 5}}, 400, -32602),
    ("call without a session", {"json": {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                         "params": {"name": "fetch", "arguments": {"url": 1}}}}, 400, -32600),
    ("5 MB body", {"content": b'{"x": "' + b"a" * 5_000_000 + b'"}'}, 413, None),
    ("text/plain body (cross-site form)", {"json": INIT, "headers": {**HEADERS, "Content-Type": "text/plain"}}, 400, None),
    ("DNS-rebinding Host", {"json": INIT, "headers": {**HEADERS, "Host": "rebind.evil.example"}}, 421, None),
    ("cross-site Origin", {"json": INIT, "headers": {**HEADERS, "Origin": "https://evil.example"}}, 403, None),
]


@pytest.mark.parametrize("what, kwargs, status, code", RAW_CASES, ids=[c[0] for c in RAW_CASES])
async def test_hostile_http_requests(server, site, what, kwargs, status, code):
    kwargs = {"headers": HEADERS, **kwargs}
    r = httpx.post(f"{server.base}/mcp", timeout=60, **kwargs)
    assert r.status_code == status, (what, r.status_code, r.text[:300])
    if code is not None:
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code and body["error"]["message"], body
    assert not any(leak in r.text for leak in LEAKS), r.text[:500]
    await assert_still_serving(server.base, site)


async def test_cancelled_call_stops_its_extraction(site):
    """A client that gives up on a slow extraction: the worker doing it is killed (not left
    running until the deadline) and the server answers the next call."""
    s = start(uuid.uuid4().hex, WEB_FETCH_MAX_ELEMENTS="1000000000", WEB_FETCH_TIMEOUT_S="120")
    try:
        async with Client(f"{s.base}/mcp") as client:
            with anyio.move_on_after(4):  # main-content detection on this page takes minutes
                await client.call_tool("fetch", {"url": f"{site}/dense/divs"})
        busy = [p for p in marked_pids(s.mark) if p != s.proc.pid]
        deadline = time.monotonic() + 30
        while any(busy_now(p) for p in busy):
            assert time.monotonic() < deadline, "the extraction worker kept running after the client left"
            time.sleep(0.2)
        await assert_still_serving(s.base, site)
    finally:
        stop_and_check_nothing_left(s)


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def busy_now(pid: int) -> bool:
    """The process used CPU in the last 0.3 s (an idle worker waits on its pipe)."""
    before = cpu_ticks(pid)
    time.sleep(0.3)
    return alive(pid) and cpu_ticks(pid) > before


async def test_server_killed_with_sigkill_leaves_no_busy_worker(site):
    """No clean shutdown at all, while a worker is deep in a slow extraction (an idle worker
    would also see its input close): the workers die with the server (PR_SET_PDEATHSIG)."""
    s = start(uuid.uuid4().hex, WEB_FETCH_MAX_ELEMENTS="1000000000", WEB_FETCH_TIMEOUT_S="120")
    async with anyio.create_task_group() as tg:
        async def slow_call() -> None:
            try:
                async with Client(f"{s.base}/mcp") as client:
                    await client.call_tool("fetch", {"url": f"{site}/dense/divs"})
            except Exception:  # noqa: BLE001 - the server is killed under this call on purpose
                pass
        tg.start_soon(slow_call)
        deadline = time.monotonic() + 60
        while not (busy := [p for p in marked_pids(s.mark) if p != s.proc.pid and busy_now(p)]):
            assert time.monotonic() < deadline, "no extraction worker got busy"
            await anyio.sleep(0.2)
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        wait_gone(busy)
        tg.cancel_scope.cancel()
    wait_gone(marked_pids(s.mark))


@pytest.mark.timeout(600)  # the first use syncs the 1.x client's environment
@pytest.mark.parametrize("arguments, expected", [
    ({"url": "http://127.0.0.1:65536/"}, "port 65536 is out of range"),
    ({"url": 42}, "url"),
    ({"url": "http://xn--/"}, "is not a valid host name"),
])
def test_mcp1_client_over_http(server, site, arguments, expected):
    out = client_v1("http", f"{server.base}/mcp", tool="fetch", args=arguments)
    assert out["is_error"] is True and expected in out["text"] and not any(leak in out["text"] for leak in LEAKS), out
    ok = client_v1("http", f"{server.base}/mcp", tool="fetch", args={"url": f"{site}/article"})
    assert ok["is_error"] is False and "Pelican-unique-marker-7731" in ok["structured"]["text"]


@pytest.mark.timeout(600)
def test_mcp1_client_over_stdio_leaves_nothing_running(site):
    mark = uuid.uuid4().hex
    target = ("stdio", "env", f"WEB_FETCH_TEST_MARK={mark}", *CMD, "--transport", "stdio")
    out = client_v1(*target, tool="fetch", args={"url": "https://xn--a.com/"})
    assert out["is_error"] is True and "is not valid IDNA" in out["text"], out
    ok = client_v1(*target, tool="fetch", args={"url": f"{site}/article"})  # spawns an extraction worker
    assert ok["is_error"] is False
    wait_gone(marked_pids(mark))


async def test_sdk_client_over_stdio_leaves_nothing_running(site):
    mark = uuid.uuid4().hex
    params = StdioServerParameters(command=CMD[0], args=CMD[1:] + ["--transport", "stdio"],
                                   env=server_env(WEB_FETCH_ALLOW="127.0.0.1", WEB_FETCH_TEST_MARK=mark))
    async with Client(params) as client:
        assert_clean_tool_error(await client.call_tool("fetch", {"url": "http://127.0.0.1:70000/"}), "out of range")
        ok = await client.call_tool("fetch", {"url": f"{site}/article"})
        assert not ok.is_error
        assert len(marked_pids(mark)) >= 2  # the server and its extraction worker
    wait_gone(marked_pids(mark))
