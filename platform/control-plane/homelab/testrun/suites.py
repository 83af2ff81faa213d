"""Which test suites exist and how their results add up (pure; the command does the I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from homelab.load.repo import Repo

# The control plane's own suite; services declare theirs in their contract's `test`.
CONTROL_PLANE_APT = ["iproute2", "shellcheck", "systemd", "curl", "procps"]
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


@dataclass(frozen=True)
class Suite:
    name: str
    cwd: Path
    command: list[str]
    apt: tuple[str, ...]
    timeout_s: int


def suites(repo: Repo) -> list[Suite]:
    out = [Suite("control-plane", repo.root, ["uv", "run", "--frozen", "pytest", "-q"],
                 tuple(CONTROL_PLANE_APT), 2400)]
    for svc in sorted(repo.services.values(), key=lambda s: s.rel_dir):
        if svc.spec.test:
            cmd = list(svc.spec.test.command)
            if cmd[:2] == ["uv", "run"] and "--frozen" not in cmd:
                cmd.insert(2, "--frozen")
            out.append(Suite(svc.name, repo.root / svc.rel_dir, cmd, tuple(svc.spec.test.apt),
                             svc.spec.test.timeout_s))
    return out


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped)


def parse_pytest_summary(output: str) -> Counts | None:
    """Counts from pytest's last summary line (`== 3 passed, 1 skipped in 2.1s ==`)."""
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found and (" in " in line or line.startswith("=")):
            n = {kind: int(num) for num, kind in found}
            failed = n.get("failed", 0) + n.get("error", 0) + n.get("errors", 0)
            return Counts(n.get("passed", 0) + n.get("xpassed", 0), failed,
                          n.get("skipped", 0) + n.get("xfailed", 0))
    return None
