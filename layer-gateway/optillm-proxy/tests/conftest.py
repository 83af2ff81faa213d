"""OptiLLM started by scripts/start.sh against a recording stand-in for the gateway."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

TESTS = Path(__file__).resolve().parent
SERVICE = TESTS.parent
REPO = SERVICE.parent.parent
START = SERVICE / "scripts" / "start.sh"
MASTER = "sk-test-gateway-master"
PROXY_KEY = "optillm-test-client-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPTILLM_", "LITELLM_")) and k not in ("OPENAI_API_KEY",)}
    env.update({"CI": "true", "UV_PYTHON_DOWNLOADS": "never", "NO_PROXY": "127.0.0.1,localhost"})
    env.update(extra)
    return env


@dataclass
class Running:
    popen: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def wait_ready(run: Running, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.popen.poll() is not None:
            raise RuntimeError(f"exited {run.popen.returncode}:\n{run.log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{run.base}{path}", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    run.stop()
    raise RuntimeError(f"not ready on {run.base}{path}:\n{run.log.read_text(errors='replace')[-3000:]}")


def start_optillm(logdir: Path, upstream: str, name: str = "optillm", wrapper: list[str] | None = None,
                  **env: str) -> Running:
    port = free_port()
    log = logdir / f"{name}.log"
    environment = clean_env(LITELLM_MASTER_KEY=MASTER, OPTILLM_PROXY_KEY=PROXY_KEY, OPTILLM_BASE_URL=upstream,
                            HOME=str(logdir), **env)
    with open(log, "w") as fh:
        popen = subprocess.Popen([*(wrapper or []), str(START), "--host", "127.0.0.1", "--port", str(port)],
                                 env=environment, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=SERVICE, start_new_session=True)
    run = Running(popen, port, log)
    wait_ready(run, "/health")
    return run


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("optillm")


@pytest.fixture(scope="session")
def upstream(logdir: Path) -> Iterator[str]:
    port_file = logdir / "upstream.port"
    popen = subprocess.Popen([sys.executable, str(TESTS / "upstream_double.py"), str(port_file)],
                             start_new_session=True)
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text()}"
    os.killpg(popen.pid, signal.SIGTERM)
    popen.wait()


@pytest.fixture(scope="session")
def optillm(logdir: Path, upstream: str) -> Iterator[Running]:
    # OPTILLM_API_KEY in the environment would switch OptiLLM to local inference: start.sh must
    # neutralise it, so the fixture sets it on purpose.
    run = start_optillm(logdir, f"{upstream}/v1", OPTILLM_API_KEY="must-be-ignored")
    yield run
    run.stop()


@pytest.fixture()
def calls(upstream: str):
    requests.delete(f"{upstream}/_calls")
    return lambda: requests.get(f"{upstream}/_calls").json()
