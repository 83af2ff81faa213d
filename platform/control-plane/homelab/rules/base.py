"""What every rule shares: the violation record and the context rules read from."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from homelab.load.repo import Repo
from homelab.rules import catalog
from homelab.rules.history import History


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int | None
    code: str
    name: str
    message: str  # one line: what is wrong, with the specifics
    detail: str = ""  # optional lines shown under it (HL801: a diff excerpt)

    @property
    def fix(self) -> str:
        """The rule's one-line fix, the same text as docs/foundation/rules.md."""
        return catalog.fix(self.code)

    def as_text(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        lines = [f"{where}: {self.code} {self.message} [{self.name}]", f"    fix: {self.fix}"]
        lines += [f"    {line}" for line in self.detail.splitlines()]
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "name": self.name, "path": self.path,
                                  "line": self.line, "message": self.message, "fix": self.fix}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class Context:
    repo: Repo
    history: History = field(default_factory=History)  # the mesh files at the change's bases
    rendered: dict[str, str] = field(default_factory=dict)  # what `render` would write

    @property
    def root(self) -> Path:
        return self.repo.root

    def read(self, rel: str) -> str | None:
        try:
            return (self.root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    @cached_property
    def tracked_files(self) -> list[str] | None:
        """Files git tracks (None outside a git checkout)."""
        try:
            out = subprocess.run(["git", "-C", str(self.root), "ls-files", "-z"],
                                 capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return [p for p in out.stdout.decode().split("\0") if p]

    def git_ignored(self, rel: str) -> bool | None:
        try:
            out = subprocess.run(["git", "-C", str(self.root), "check-ignore", "-q", "--no-index", rel],
                                 capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return {0: True, 1: False}.get(out.returncode)
