"""A fake mesh: a mesh view whose services point at a loopback test server (healthy, failing,
slow, wrong body) and at a closed port."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from meshkit.testing import ServerProcess, free_port


async def ok(_):
    return JSONResponse({"status": "ok"})


async def down(_):
    return PlainTextResponse("loading", status_code=503)


async def slow(_):
    await asyncio.sleep(5)
    return JSONResponse({"status": "ok"})


async def wrong_body(_):
    return JSONResponse({"status": "starting"})


APP = Starlette(routes=[Route("/ok", ok), Route("/down", down), Route("/slow", slow), Route("/wrong-body", wrong_body)])


@pytest.fixture(scope="session")
def probe_port() -> int:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "probe server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=5)


def _service(name: str, kind: str, layer: str, port: int | None, *, bind: str | None = "127.0.0.1",
             address: str | None = "127.0.0.1", health: dict | None = None, exposure: str = "localhost",
             upstreams: tuple[str, ...] = ()) -> dict:
    """One service entry of a mesh view (mesh/view.json, what `homelab render` writes)."""
    url = f"http://{address}:{port}" if port is not None and address else None
    if health is not None:
        health = {"expect_status": 200, "expect_body": "", "timeout_s": 3.0, "required": True,
                  "auth_env": None, **health}
        path = health.pop("path")
        health |= {"url": url + path, "local_url": f"http://127.0.0.1:{port}{path}"}
    return {"name": name, "kind": kind, "layer": layer, "host": "local", "bind": bind, "port": port,
            "exposure": exposure, "address": address if port else None, "url": url, "health": health,
            "upstreams": list(upstreams), "autostart": True}


def _route(name: str, service: str, upstream_id: str, fallbacks: tuple[str, ...] = (),
           approach: str | None = None, target: str | None = None) -> dict:
    return {"name": name, "kind": "alias" if target else "model", "service": service,
            "upstream_id": upstream_id, "fallbacks": list(fallbacks), "approach": approach,
            "target": target}


def fake_view(probe_port: int) -> dict:
    """A mesh whose services point at the loopback test server (healthy, failing, slow, wrong
    body) and at a closed port."""
    closed = free_port()
    return {
        "format": 1, "generated_by": "tests/conftest.py", "mesh": "testmesh",
        "gateway": {"service": "gw", "url": f"http://127.0.0.1:{probe_port}/v1"},
        "hosts": [{"name": "local", "address": "127.0.0.1", "role": "everything"},
                  {"name": "nas", "address": "192.0.2.10", "role": "storage box"}],
        "services": [
            _service("be", "backend", "inference", probe_port, health={"path": "/down"}),
            _service("cli", "client", "orchestration", None, bind=None, address=None),
            _service("gone", "backend", "inference", closed, health={"path": "/health"}),
            _service("gw", "gateway", "gateway", probe_port, bind="0.0.0.0", exposure="lan",
                     health={"path": "/ok"}, upstreams=("be",)),
            _service("opt", "optimizer", "gateway", probe_port,
                     health={"path": "/slow", "timeout_s": 0.3}),
            _service("tool", "mcp-tool", "tools", probe_port,
                     health={"path": "/wrong-body", "expect_body": '"status": "ok"', "required": False}),
        ],
        "routes": [_route("jerry-small", "be", "small-v1", ("jerry-big",)),
                   _route("jerry-big", "be", "big-v2"), _route("jerry-gone", "gone", "g"),
                   _route("jerry-small-moa", "opt", "moa-jerry-small", approach="moa",
                          target="jerry-small")],
        "mcp_servers": [],
        "never_call": [],
    }


@pytest.fixture
def fake_view_file(tmp_path: Path, probe_port: int) -> Path:
    """The fake mesh's view file (HOMELAB_MESH_VIEW)."""
    return write_fake_view(tmp_path, probe_port)


def write_fake_view(tmp_path: Path, probe_port: int) -> Path:
    path = tmp_path / "view.json"
    path.write_text(json.dumps(fake_view(probe_port)))
    return path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


CMD = [sys.executable, "-m", "mesh_status.cli"]


def env_for(view: Path) -> dict[str, str]:
    return {**os.environ, "HOMELAB_MESH_VIEW": str(view)}


@contextmanager
def running_server(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """The real server process over streamable HTTP on a free port: (base URL, process). Its
    output goes to a file (the server logs every request, and a pipe nobody reads fills up and
    blocks it: seen, a hostile test hung on a 1 MB error message)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mesh-status-") as tmp:
        server = ServerProcess.start("mesh-status", CMD + ["--transport", "streamable-http", "--port", str(port)],
                                     log=Path(tmp) / "server.log", port=port, env=env, timeout=30)
        try:
            yield server.base, server.popen
        finally:
            # TERM to the server alone, not its process group: tests check that what it started
            # goes with it.
            server.popen.terminate()
            server.popen.wait(timeout=10)


@pytest.fixture
def http_server(fake_view_file: Path):
    """The real server process over streamable HTTP on a free port; yields its base URL."""
    with running_server(env_for(fake_view_file)) as (base, _proc):
        yield base
