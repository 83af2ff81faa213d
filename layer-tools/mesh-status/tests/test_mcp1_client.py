"""An mcp 1.x client (the shared test environment platform/testing/mcp1-client) against this 2.x
server, over stdio and streamable HTTP: "is jerry-small up, and where does it run?" for agents
still on the 1.x SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CMD, env_for

MCP1 = Path(__file__).resolve().parents[3] / "platform" / "testing" / "mcp1-client"


def client_v1(env: dict[str, str], *target: str, tool: str, args: dict) -> dict:
    if shutil.which("uv") is None:
        pytest.fail("uv is required for the mcp 1.x client environment")
    env = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.run(["uv", "run", "--frozen", "--project", str(MCP1), "python", str(MCP1 / "client_v1.py"),
                           *target, "--", tool, json.dumps(args)],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_mcp1_client_asks_where_a_model_runs(transport, fake_view_file, request):
    env = env_for(fake_view_file)
    target = ("stdio", *CMD, "--transport", "stdio") if transport == "stdio" else \
        ("http", request.getfixturevalue("http_server") + "/mcp")
    models = client_v1(env, *target, tool="list_models", args={})
    assert models["server"] == "mesh-status" and models["is_error"] is False
    assert set(models["tools"]) == {"list_models", "service_health", "topology"}
    served = {m["name"]: m for m in models["structured"]["result"]}
    assert (served["jerry-small"]["service"], served["jerry-small"]["host"]) == ("be", "local")
    health = client_v1(env, *target, tool="service_health", args={"service": "jerry-small"})
    rows = health["structured"]["result"]
    assert [r["service"] for r in rows] == ["be"] and rows[0]["healthy"] is False  # /down answers 503
    unknown = client_v1(env, *target, tool="service_health", args={"service": "no-such"})
    assert unknown["is_error"] is True and "no-such" in unknown["text"]
