"""Drive supervisord over its unix socket (XML-RPC): start the daemon, programs, shut down."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from homelab.runtime.paths import RuntimePaths

# Variables of the calling `uv run homelab` that must not leak into the services' own `uv run`.
_LEAKY = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PROJECT", "PYTHONPATH", "PYTHONHOME",
          "UV_RUN_RECURSION_DEPTH")


@dataclass(frozen=True)
class ProcInfo:
    name: str
    state: str  # STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL UNKNOWN
    pid: int
    start: int  # epoch seconds
    now: int
    description: str
    exitstatus: int = 0  # of the last exit; -1 when it was killed by a signal
    spawnerr: str = ""  # why supervisord could not start the command, if it could not

    @property
    def uptime_s(self) -> int | None:
        return self.now - self.start if self.state == "RUNNING" and self.start else None


class SupervisorError(RuntimeError):
    pass


class Supervisor:
    def __init__(self, paths: RuntimePaths) -> None:
        self.paths = paths

    def _proxy(self, timeout: float = 10.0):  # noqa: ANN202 - xmlrpc proxy is dynamic
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.paths.socket}")
        transport.timeout = timeout  # type: ignore[attr-defined]
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    @property
    def rpc(self):  # noqa: ANN201
        return self._proxy().supervisor

    def running(self) -> bool:
        if not self.paths.socket.exists():
            return False
        try:
            return self.rpc.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int | None:
        try:
            return int(self.rpc.getPID())
        except (OSError, xmlrpc.client.Error):
            return None

    def start_daemon(self, timeout_s: float = 20.0) -> None:
        """Start supervisord (it daemonizes) and wait until its socket answers."""
        env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if p != venv_bin) or os.defpath
        # A stale socket file from a killed daemon makes supervisord refuse to start.
        if self.paths.socket.exists() and not self.running():
            self.paths.socket.unlink()
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.paths.conf)],
            env=env, cwd=self.paths.root, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout).strip()
            raise SupervisorError(f"supervisord did not start: {why}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        raise SupervisorError(f"supervisord did not answer on {self.paths.socket} "
                              f"within {timeout_s:.0f} s; see {self.paths.supervisord_log}")

    def apply_config(self) -> dict[str, list[str]]:
        """Re-read the config and apply it like `supervisorctl update`: changed programs are
        stopped and re-added (they stay stopped until started), removed ones stopped."""
        rpc = self.rpc
        added, changed, removed = rpc.reloadConfig()[0]
        for name in removed + changed:
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
        for name in changed + added:
            rpc.addProcessGroup(name)
        return {"added": added, "changed": changed, "removed": removed}

    def info(self) -> dict[str, ProcInfo]:
        out = {}
        for item in self.rpc.getAllProcessInfo():
            out[item["name"]] = ProcInfo(item["name"], item["statename"], item["pid"],
                                         item["start"], item["now"], item["description"],
                                         item.get("exitstatus", 0), item.get("spawnerr", ""))
        return out

    def start(self, name: str) -> None:
        try:
            self.rpc.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise SupervisorError(f"{name}: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        try:
            self._proxy(timeout=60).supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise SupervisorError(f"{name}: {fault.faultString}") from None

    def shutdown(self, timeout_s: float = 30.0) -> None:
        pid = self.pid()
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            self.rpc.shutdown()
        deadline = time.monotonic() + timeout_s
        while pid and time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (when the caller is its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
