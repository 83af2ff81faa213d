"""Where the runtime keeps its state: `<repo>/.homelab/` (gitignored)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".homelab"
# AF_UNIX paths are limited to 108 bytes on Linux; keep a margin for supervisor's own temp names.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class RuntimePaths:
    root: Path  # the repo checkout

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def secrets(self) -> Path:
        return self.state / "secrets.env"

    @property
    def conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def view(self) -> Path:
        """The mesh view the programs read (HOMELAB_MESH_VIEW): the checkout's mesh/view.json,
        as on an installed host (<install_dir>/mesh/view.json), so paths in it that are relative
        to the checkout (MCP stdio commands) resolve the same way. `up` re-renders it when the
        contracts changed since the last `homelab render`."""
        return self.root / "mesh" / "view.json"

    @property
    def pidfile(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def inputs(self) -> Path:
        """Digests of what each program was started from (see runtime/inputs.py)."""
        return self.run / "inputs.json"

    @property
    def lock(self) -> Path:
        return self.run / "up.lock"

    @property
    def supervisord_log(self) -> Path:
        return self.logs / "supervisord.log"

    @property
    def socket(self) -> Path:
        """The supervisord control socket: under .homelab/run, or a short per-checkout path in
        the temp dir when the checkout path is too long for a unix socket."""
        sock = self.run / "supervisor.sock"
        if len(str(sock)) <= _MAX_SOCKET_PATH:
            return sock
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"homelab-{digest}.sock"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> None:
        for d in (self.run, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o700)  # holds secrets.env and a config with secrets in it
