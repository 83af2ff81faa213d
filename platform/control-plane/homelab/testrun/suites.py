"""Which test suites exist: the control plane's own, then each service's (its contract's `test`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from homelab.load.repo import Repo

CONTROL_PLANE_APT = ("iproute2", "shellcheck", "systemd", "curl", "procps", "prometheus", "util-linux",
                     "mount")  # the last two: private meshes (unshare, a private /etc)
# Its slowest parts start real meshes (runtime faults, two hosts, the README end to end).
CONTROL_PLANE_TIMEOUT_S = 2400
# meshkit, the shared library: its test helpers' own tests start namespaces (iproute2) and
# bind a private /etc (util-linux's unshare, mount).
MESHKIT_APT = ("iproute2", "util-linux", "mount")
MESHKIT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Suite:
    name: str
    cwd: Path
    command: list[str]
    apt: tuple[str, ...]
    timeout_s: int

    @property
    def is_pytest(self) -> bool:
        return "pytest" in self.command


# The shared library every service depends on (platform/meshkit, its own tests).
MESHKIT_DIR = "platform/meshkit"


def suites(repo: Repo) -> list[Suite]:
    out = [Suite("control-plane", repo.root, ["uv", "run", "--frozen", "pytest", "-q"],
                 CONTROL_PLANE_APT, CONTROL_PLANE_TIMEOUT_S)]
    if (repo.root / MESHKIT_DIR / "tests").is_dir():  # synthetic test meshes have no meshkit
        # In the control plane's environment (its dev group has pytest): a dev group of meshkit's
        # own would change the metadata every service's uv.lock records for this path dependency.
        out.append(Suite("meshkit", repo.root / MESHKIT_DIR,
                         ["uv", "run", "--frozen", "--project", "../..", "pytest", "-q"],
                         MESHKIT_APT, MESHKIT_TIMEOUT_S))
    for svc in sorted(repo.services.values(), key=lambda s: s.rel_dir):
        if svc.spec.test:
            cmd = list(svc.spec.test.command)
            if cmd[:2] == ["uv", "run"] and "--frozen" not in cmd:
                cmd.insert(2, "--frozen")
            out.append(Suite(svc.name, repo.root / svc.rel_dir, cmd, tuple(svc.spec.test.apt),
                             svc.spec.test.timeout_s))
    return out
