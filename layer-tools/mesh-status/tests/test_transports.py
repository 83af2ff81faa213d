"""The real server process over stdio and streamable HTTP (HOMELAB_MESH_VIEW = the fake mesh view)."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from conftest import CMD, env_for
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio


async def exercise(client: Client) -> None:
    assert {t.name for t in (await client.list_tools()).tools} == {"list_models", "service_health", "topology"}
    models = await client.call_tool("list_models", {})
    assert "jerry-small" in str(models.structured_content)
    health = await client.call_tool("service_health", {"service": "gw"})
    assert health.structured_content["result"][0]["healthy"] is True


async def test_stdio(fake_view_file):
    params = StdioServerParameters(command=CMD[0], args=CMD[1:] + ["--transport", "stdio"], env=env_for(fake_view_file))
    async with Client(params) as client:
        await exercise(client)


async def test_streamable_http_and_health(http_server):
    r = httpx.get(http_server + "/health", timeout=5)
    assert r.json() == {"status": "ok", "service": "mesh-status"}
    async with Client(f"{http_server}/mcp") as client:
        await exercise(client)
    initialize_like_a_1x_client(http_server)


def test_bad_input_without_traceback(tmp_path):
    r = subprocess.run(CMD + ["--host", "localhost-ish"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env=env_for(tmp_path))
    assert r.returncode == 2 and "--host must be an IP address" in r.stderr and "Traceback" not in r.stderr


def initialize_like_a_1x_client(base: str) -> None:
    """mcp 1.x clients use the initialize handshake (protocol 2025-06-18), then tools/call."""
    version = "2025-06-18"
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "mcp-1x", "version": "1.30.0"}}}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        r = http.post("/mcp", json=init)
        assert r.status_code == 200 and version in r.text and "mesh-status" in r.text, r.text
        h = {"mcp-protocol-version": version}
        if r.headers.get("mcp-session-id"):
            h["mcp-session-id"] = r.headers["mcp-session-id"]
        http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
        r = http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                    "params": {"name": "list_models", "arguments": {}}}, headers=h)
        assert r.status_code == 200 and "jerry-small" in r.text, r.text
