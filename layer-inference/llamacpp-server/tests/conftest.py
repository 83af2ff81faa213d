"""Shared test helpers: the contract, the llama-server binary (opt-in build) and a real server.

The real-binary tests need the built llama-server. When this machine has it cached they run;
when it does not, building it takes far longer than a test run (~35 min on 2 busy cores,
SERVICE_SPEC.md), so they are opt-in: HOMELAB_TEST_LLAMACPP=1 builds it first, otherwise they
skip with a reason starting "opt-in: HOMELAB_TEST_LLAMACPP=1" (platform/testing/allowed-skips.yaml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from llamacpp_server import build
from meshkit.testing import free_port, wait_until

SERVICE_DIR = Path(__file__).resolve().parents[1]
REPO = SERVICE_DIR.parents[1]
KEY = "test-key-not-a-secret"
OPT_IN = os.environ.get("HOMELAB_TEST_LLAMACPP") == "1"


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])


def contract(name: str = "llamacpp-server") -> dict:
    return next(c for c in map(front_matter, REPO.glob("layer-*/*/SERVICE_SPEC.md")) if c["name"] == name)


@pytest.fixture(scope="session")
def llama_binary() -> Path:
    found = build.cached_binary()
    if found is not None:
        return found
    if not OPT_IN:
        pytest.skip(f"opt-in: HOMELAB_TEST_LLAMACPP=1 builds llama-server first ({build.MEASURED_BUILD}); "
                    f"not built on this machine yet ({build.cache_dir()})")
    return build.ensure_llama_server()


@dataclass
class Server:
    proc: subprocess.Popen
    base: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        """The end of the log, for failure messages only: never assert on it, the start scrolls off."""
        return self.text()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(tmp: Path, env: dict[str, str] | None = None, *, wait: bool = True) -> Server:
    """`llamacpp-server serve` (the contract's command, from this venv) on a free port."""
    port = free_port()
    log = tmp / f"llamacpp-{port}.log"
    full = {**os.environ, "LLAMACPP_SERVER_API_KEY": KEY, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "llamacpp_server", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=full, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    if wait:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"llama-server exited {proc.returncode}:\n{server.tail()}")
            try:
                return httpx.get(server.base + "/health", timeout=2, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(healthy, "llama-server healthy", timeout=120, interval=0.1)
    return server


@pytest.fixture(scope="module")
def server(llama_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("llamacpp"))
    yield srv
    srv.stop()
