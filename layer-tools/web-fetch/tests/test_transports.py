"""The real server process over stdio and streamable HTTP, as the registry starts it, plus
GET /health and a protocol-version check for 1.x-era clients."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from conftest import CMD, server_env
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio


async def exercise(client: Client, site: str) -> None:
    assert [t.name for t in (await client.list_tools()).tools] == ["fetch"]
    ok = await client.call_tool("fetch", {"url": f"{site}/article"})
    assert not ok.is_error and "Pelican-unique-marker-7731" in ok.structured_content["text"]
    refused = await client.call_tool("fetch", {"url": "http://10.0.0.1/"})
    assert refused.is_error and "private" in refused.content[0].text


async def test_stdio(site):
    params = StdioServerParameters(command=CMD[0], args=CMD[1:] + ["--transport", "stdio"],
                                   env=server_env(WEB_FETCH_ALLOW="127.0.0.1"))
    async with Client(params) as client:
        await exercise(client, site)


async def test_streamable_http(http_server, site):
    async with Client(f"{http_server}/mcp") as client:
        await exercise(client, site)


def test_health(http_server):
    r = httpx.get(http_server + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_dns_rebinding_protection_on_loopback(http_server):
    r = httpx.post(http_server + "/mcp", headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"},
                   json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 421


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18"])
def test_initialize_handshake_of_1x_clients(http_server, version):
    """mcp 1.x clients use the initialize handshake with these protocol versions."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "mcp-1x", "version": "1.26.0"}}}
    with httpx.Client(base_url=http_server, headers=headers, timeout=10) as http:
        r = http.post("/mcp", json=init)
        assert r.status_code == 200, r.text
        assert version in r.text and "web-fetch" in r.text
        session = r.headers.get("mcp-session-id")
        h = {"mcp-session-id": session, "mcp-protocol-version": version} if session else {"mcp-protocol-version": version}
        http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
        r = http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=h)
        assert r.status_code == 200 and '"fetch"' in r.text


def test_bad_cli_input_is_reported_without_traceback():
    r = subprocess.run(CMD + ["--host", "not-an-ip"], capture_output=True, text=True, env=server_env(), timeout=60)
    assert r.returncode == 2 and "--host must be an IP address" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(CMD, capture_output=True, text=True, env=server_env(WEB_FETCH_MAX_BYTES="x"), timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "WEB_FETCH_MAX_BYTES" in r.stderr and "Traceback" not in r.stderr
