"""A fake mesh: contracts in a temp repo whose services point at a loopback test server
(healthy, failing, slow, wrong body) and at a closed port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
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


def spec(path: Path, text: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "SERVICE_SPEC.md").write_text("---\n" + textwrap.dedent(text).strip() + "\n---\n# prose\n")


@pytest.fixture
def fake_repo(tmp_path: Path, probe_port: int) -> Path:
    return write_fake_repo(tmp_path, probe_port)


def write_fake_repo(tmp_path: Path, probe_port: int) -> Path:
    closed = free_port()
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "mesh.yaml").write_text(textwrap.dedent("""\
        name: testmesh
        gateway: {service: gw, public_base_url: "http://127.0.0.1:%d/v1"}
        hosts:
          - {name: local, address: 127.0.0.1, role: everything}
          - {name: nas, address: 192.0.2.10, role: storage box}
        """ % probe_port))
    spec(tmp_path / "layer-gateway" / "gw", f"""
        name: gw
        kind: gateway
        host: local
        bind: 0.0.0.0
        port: {probe_port}
        exposure: lan
        health: {{path: /ok}}
        upstreams: [be]
        run: {{command: [x]}}
        """)
    spec(tmp_path / "layer-inference" / "be", f"""
        name: be
        kind: backend
        host: local
        bind: 127.0.0.1
        port: {probe_port}
        health: {{path: /down}}
        run: {{command: [x]}}
        models:
          - {{name: jerry-small, upstream_id: small-v1, fallbacks: [jerry-big]}}
          - {{name: jerry-big, upstream_id: big-v2}}
        """)
    spec(tmp_path / "layer-gateway" / "opt", f"""
        name: opt
        kind: optimizer
        host: local
        bind: 127.0.0.1
        port: {probe_port}
        health: {{path: /slow, timeout_s: 0.3}}
        run: {{command: [x]}}
        aliases:
          - {{name: jerry-small-moa, approach: moa, target: jerry-small}}
        """)
    spec(tmp_path / "layer-tools" / "tool", f"""
        name: tool
        kind: mcp-tool
        host: local
        bind: 127.0.0.1
        port: {probe_port}
        health: {{path: /wrong-body, expect_body: '"status": "ok"', required: false}}
        run: {{command: [x]}}
        """)
    spec(tmp_path / "layer-inference" / "gone", f"""
        name: gone
        kind: backend
        host: local
        bind: 127.0.0.1
        port: {closed}
        health: {{path: /health}}
        run: {{command: [x]}}
        models: [{{name: jerry-gone, upstream_id: g}}]
        """)
    spec(tmp_path / "layer-orchestration" / "cli", """
        name: cli
        kind: client
        host: local
        run: {command: [x]}
        """)
    return tmp_path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


CMD = [sys.executable, "-m", "mesh_status.cli"]


def env_for(root: Path) -> dict[str, str]:
    return {**os.environ, "HOMELAB_REPO": str(root)}


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
def http_server(fake_repo: Path):
    """The real server process over streamable HTTP on a free port; yields its base URL."""
    with running_server(env_for(fake_repo)) as (base, _proc):
        yield base
