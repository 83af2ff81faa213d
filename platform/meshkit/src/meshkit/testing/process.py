"""A server process for a test: start a command, wait for its health URL, stop its whole group.

    with ServerProcess.start("gateway", cmd, log=tmp / "gw.log", port=port) as gw:
        httpx.get(f"{gw.base}/v1/models")

`start` fails fast: when the process exits before it is healthy, or the deadline passes, it
raises ServerFailed with the command's exit code and the tail of its log (so a pytest failure
shows why), and nothing is left running. The process gets a session of its own, so `stop`
reaches everything it started (uv run -> the server -> its workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from meshkit.testing.http import status


class ServerFailed(RuntimeError):
    """The server exited or did not become healthy in time (the message has its log tail)."""


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServerProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int
    host: str = "127.0.0.1"
    extra: dict[str, object] = field(default_factory=dict)  # whatever a suite wants to keep with it

    @classmethod
    def start(cls, name: str, cmd: list[str], *, log: Path, port: int, health: str = "/health",
              env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120.0,
              host: str = "127.0.0.1") -> ServerProcess:
        """Start `cmd` (output to `log`) and wait until GET http://host:port{health} is 200."""
        return cls.spawn(name, cmd, log=log, port=port, env=env, cwd=cwd, host=host).healthy(health, timeout)

    @classmethod
    def spawn(cls, name: str, cmd: list[str], *, log: Path, port: int,
              env: dict[str, str] | None = None, cwd: Path | None = None,
              host: str = "127.0.0.1") -> ServerProcess:
        """Start `cmd` without waiting (start several, then `wait_healthy` each: they boot in
        parallel). The caller stops it, also when its wait fails."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as fh:
            popen = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return cls(name, popen, log, port, host)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)

    def wait_healthy(self, health: str = "/health", timeout: float = 120.0) -> float:
        """Seconds until the health URL answered 200; ServerFailed (with the log tail) when the
        process exits first or `timeout` passes."""
        start = time.monotonic()
        url = f"{self.base}{health}"
        while True:
            code = self.popen.poll()
            if code is not None:
                raise ServerFailed(f"{self.name} exited with {code} before {url} answered 200; "
                                   f"log tail ({self.log}):\n{self.log_tail()}")
            if status(url) == 200:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ServerFailed(f"{self.name} not healthy on {url} after {timeout:.0f} s; "
                                   f"log tail ({self.log}):\n{self.log_tail()}")
            time.sleep(0.2)

    def healthy(self, health: str = "/health", timeout: float = 120.0) -> ServerProcess:
        """`wait_healthy`, stopping the process when that fails (nothing is left running); self."""
        try:
            self.wait_healthy(health, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 15.0) -> int | None:
        """TERM the process group, KILL it after `grace` seconds; returns the exit code."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(grace)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return self.popen.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
