"""Shared fixtures: a real server subprocess on a free port (`free_port` from meshkit.testing),
and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meshkit.testing import free_port

os.environ.setdefault("CI", "true")  # OpenVINO telemetry stays off


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def health(self) -> httpx.Response:
        return httpx.get(self.base + "/health", timeout=5)


TINY_ONLY = "models:\n  jerry-tiny:\n    builtin: jerry-tiny\n"


def start_server(tmp: Path, env_lines: dict[str, str] | None = None, extra_args: list[str] | None = None,
                 wait_ok: bool = True, environ: dict[str, str | None] | None = None,
                 default_models: bool = False) -> Server:
    """`env_lines` go to the server's env file; `environ` to its real environment (e.g. ONEDNN_*;
    None removes a variable). Without a registry in `env_lines` the server gets one serving only
    jerry-tiny (the default also loads jerry-chat: seconds and ~300 MB per server that most tests
    do not use); `default_models` serves the real default instead."""
    tmp.mkdir(parents=True, exist_ok=True)
    env_file = tmp / "ov-server.env"
    lines = {"OV_SERVER_MODEL_DIR": str(tmp / "models"), "OV_SERVER_RELOAD_INTERVAL": "0.2", **(env_lines or {})}
    if not default_models and "OV_SERVER_REGISTRY" not in lines and not any(
            a.startswith("--registry") for a in extra_args or []):
        (tmp / "tiny-only.yaml").write_text(TINY_ONLY)
        lines["OV_SERVER_REGISTRY"] = str(tmp / "tiny-only.yaml")
    env_file.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OV_SERVER_")}
    env["CI"] = "true"
    for key, value in (environ or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    port = free_port()
    log = tmp / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ov_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--env-file", str(env_file), "--log-level", "warning", *(extra_args or [])],
        stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )
    server = Server(proc, port, log)
    deadline = time.monotonic() + 120  # a first load of jerry-chat converts its GGUF (seconds)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            r = server.health()
            if r.status_code == 200 or (not wait_ok and r.status_code == 503):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("main"))
    yield s
    stop_server(s)


@pytest.fixture
def client(server: Server):
    from openai import OpenAI

    with OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=60) as c:
        yield c


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Bounded polling for an eventual state (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
