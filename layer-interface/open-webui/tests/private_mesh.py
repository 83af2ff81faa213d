"""A private copy of this checkout's mesh on free ports, run by the control plane's own `homelab up`.

Uses the control plane's sandbox (homelab.runtime.sandbox.copy_mesh: every port rewritten, the
machine-wide env folder replaced by <copy>/.homelab-etc), so the services run exactly as
`homelab up --with open-webui` runs them, with this contract's env, never on the shared ports.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contracts import REPO


def _control_plane(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(["uv", "run", "--project", str(REPO), "--frozen", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@dataclass
class PrivateMesh:
    root: Path
    ports: dict[str, int]

    @classmethod
    def copy(cls, dst: Path, services: list[str]) -> PrivateMesh:
        code = ("import json, sys; from pathlib import Path; from homelab.runtime.sandbox import copy_mesh; "
                "print(json.dumps(copy_mesh(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(','))))")
        done = _control_plane("python", "-c", code, str(REPO), str(dst), ",".join(services), timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"copy_mesh failed:\n{done.stderr[-3000:]}")
        return cls(dst, json.loads(done.stdout))

    def homelab(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return _control_plane("homelab", "--repo", str(self.root), *args, timeout=timeout)

    @property
    def etc(self) -> Path:
        """Where the copy's services read their machine-wide env files (/etc/homelab-llm)."""
        return self.root / ".homelab-etc"

    @property
    def state(self) -> Path:
        return self.root / ".homelab"

    def secrets(self) -> dict[str, str]:
        text = (self.state / "secrets.env").read_text(encoding="utf-8")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))

    def log(self, service: str) -> str:
        path = self.state / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""
