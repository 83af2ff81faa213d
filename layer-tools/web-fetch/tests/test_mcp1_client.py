"""An mcp 1.x client (its own environment, platform/testing/mcp1-client) against this 2.x server,
over stdio and streamable HTTP: agents still on the 1.x SDK (e.g. huggingface_hub's tiny-agents)
can use it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CMD, server_env

MCP1 = Path(__file__).resolve().parents[3] / "platform" / "testing" / "mcp1-client"


def client_v1(*target: str, tool: str, args: dict) -> dict:
    if shutil.which("uv") is None:
        pytest.fail("uv is required for the mcp 1.x client environment")
    env = server_env(WEB_FETCH_ALLOW="127.0.0.1")
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["uv", "run", "--frozen", "--project", str(MCP1), "python", str(MCP1 / "client_v1.py"),
                           *target, "--", tool, json.dumps(args)],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_version_is_1x():
    assert 'mcp==1.' in (MCP1 / "pyproject.toml").read_text()


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_mcp1_client_fetches_and_gets_tool_errors(transport, http_server, site):
    target = ("stdio", *CMD, "--transport", "stdio") if transport == "stdio" else ("http", f"{http_server}/mcp")
    ok = client_v1(*target, tool="fetch", args={"url": f"{site}/article"})
    assert ok["server"] == "web-fetch" and ok["tools"] == ["fetch"] and ok["is_error"] is False
    assert "Pelican-unique-marker-7731" in ok["structured"]["text"]
    assert "Pelican-unique-marker-7731" in json.loads(ok["text"])["text"]  # text block for older clients
    refused = client_v1(*target, tool="fetch", args={"url": "http://[::ffff:10.0.0.1]/"})
    assert refused["is_error"] is True and "is private" in refused["text"]
