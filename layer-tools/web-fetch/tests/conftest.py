"""Shared fixtures: a loopback HTTP server with the test pages, a fake DNS, and a network
sentinel that fails the test if anything tries to connect outside loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
import threading
import time
from pathlib import Path

import httpcore
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from meshkit.testing import ServerProcess, free_port
from web_fetch.config import Settings
from web_fetch.extractpool import ExtractorPool
from web_fetch.fetcher import make_client
from web_fetch.server import build_server, make_pool
from web_fetch.guard import AllowList

FIXTURES = Path(__file__).parent / "fixtures"
ARTICLE = (FIXTURES / "article.html").read_text()


async def article(_: Request) -> Response:
    return HTMLResponse(ARTICLE)


async def plain(_: Request) -> Response:
    return PlainTextResponse("plain words " * 50)


async def big(_: Request) -> Response:
    return PlainTextResponse("x" * 200_000)


async def big_chunked(_: Request) -> Response:
    async def gen():
        for _ in range(50):
            yield b"y" * 10_000
    return StreamingResponse(gen(), media_type="text/plain")  # no Content-Length


async def slow(_: Request) -> Response:
    async def gen():
        yield b"<html><body>"
        await asyncio.sleep(30)
        yield b"</body></html>"
    return StreamingResponse(gen(), media_type="text/html")


async def image(_: Request) -> Response:
    return Response(b"\x89PNG\r\n", media_type="image/png")


async def missing(_: Request) -> Response:
    return PlainTextResponse("nope", status_code=404)


async def to_private(_: Request) -> Response:
    return RedirectResponse("http://10.0.0.1/admin", status_code=302)


async def to_metadata(_: Request) -> Response:
    return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=301)


async def to_article(_: Request) -> Response:
    return RedirectResponse("/article", status_code=302)


# Tag-dense pages of ~1.9 MB: tens of thousands of tiny elements make main-content detection
# take minutes (measured: `divs` over 120 s) while the bytes stay under the size limit.
DENSE_UNITS = {"spans": "<span>a</span>", "divs": "<div><p>w</p></div>", "items": "<li>i</li>",
               "cells": "<tr><td>x</td><td>y</td></tr>"}
DENSE_BYTES = 1_900_000


def dense_page(kind: str) -> bytes:
    unit = DENSE_UNITS[kind]
    return ("<html><head><title>Dense " + kind + "</title></head><body>" + unit * (DENSE_BYTES // len(unit))
            + "</body></html>").encode()


async def dense(request: Request) -> Response:
    return Response(dense_page(request.path_params["kind"]), media_type="text/html")


async def loop(request: Request) -> Response:
    n = int(request.path_params["n"])
    return RedirectResponse(f"/loop/{n + 1}", status_code=302)


APP = Starlette(routes=[
    Route("/article", article), Route("/plain", plain), Route("/big", big),
    Route("/big-chunked", big_chunked), Route("/slow", slow), Route("/image.png", image),
    Route("/missing", missing), Route("/to-private", to_private), Route("/to-metadata", to_metadata),
    Route("/to-article", to_article), Route("/loop/{n}", loop), Route("/dense/{kind}", dense),
])


@pytest.fixture(scope="session")
def site() -> str:
    """Base URL of the fixture pages, served on 127.0.0.1 only."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fixture server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


FAKE_DNS = {
    "fixtures.test": ["127.0.0.1"],
    "evil.example": ["127.0.0.1"],
    "evil6.example": ["::1"],
    "intranet.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.34", "192.168.1.20"],
    "metadata.example": ["169.254.169.254"],
    "public.example": ["93.184.216.34"],
}


async def fake_resolve(host: str, port: int) -> list[str]:
    """Names resolve from FAKE_DNS only: tests never ask a real DNS server."""
    if host in FAKE_DNS:
        return FAKE_DNS[host]
    if host == "localhost":
        return ["127.0.0.1", "::1"]
    raise OSError(f"[fake dns] unknown host {host}")


class LoopbackOnly(httpcore.AsyncNetworkBackend):
    """The real backend, but any attempt to connect outside loopback is recorded and refused:
    if the guard ever let a private address through, the test fails instead of sending traffic."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.violations: list[str] = []
        self.connects: list[str] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            self.violations.append(host)
            raise httpcore.ConnectError(f"sentinel: refused non-loopback {host}")
        return await self.inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@pytest.fixture
def sentinel() -> LoopbackOnly:
    backend = LoopbackOnly()
    yield backend
    assert backend.violations == [], f"connections outside loopback attempted: {backend.violations}"


def settings(allow: str = "", **kw) -> Settings:
    return Settings(allow=AllowList.parse(allow), **kw)


@pytest.fixture
async def make_server(client_factory):
    """build_server with the test's network sentinel; every extraction worker it started is
    stopped at teardown, and the test fails if one survives."""
    pools: list[ExtractorPool] = []

    def make(s: Settings, pool: ExtractorPool | None = None):
        pool = pool or make_pool(s)
        pools.append(pool)
        return build_server(s, client_factory(s), pool=pool)
    yield make
    pids = [pid for pool in pools for pid in pool.pids()]
    for pool in pools:
        await pool.aclose()
    wait_gone(pids)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def marked_pids(mark: str) -> list[int]:
    """Processes (not zombies) whose environment carries MARK=<mark>: a server started by a
    test and every child it made, even after they were re-parented."""
    needle = f"\0WEB_FETCH_TEST_MARK={mark}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"processes still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)


@pytest.fixture
def client_factory(sentinel):
    def make(s: Settings):
        return lambda: make_client(s, resolver=fake_resolve, inner=sentinel)
    return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


CMD = [sys.executable, "-m", "web_fetch.cli"]


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_FETCH_")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def http_server(site, tmp_path_factory):
    """The real server over streamable HTTP; its output goes to a file (it logs every request,
    and a pipe nobody reads fills up and blocks it)."""
    port = free_port()
    server = ServerProcess.start(
        "web-fetch", CMD + ["--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)],
        log=tmp_path_factory.mktemp("web-fetch") / "server.log", port=port,
        env=server_env(WEB_FETCH_ALLOW="127.0.0.1"), timeout=30)
    try:
        yield server.base
    finally:
        server.popen.terminate()  # the server alone: its workers must go with it
        server.popen.wait(timeout=10)
