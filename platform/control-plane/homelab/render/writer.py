"""Write a set of files all-or-nothing: every file is staged beside its target first, and only
when all are staged are they renamed into place (rename is atomic per file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from homelab.errors import InputError


def changed(root: Path, files: dict[str, str]) -> list[str]:
    out = []
    for rel, content in sorted(files.items()):
        path = root / rel
        try:
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                out.append(rel)
        except (OSError, UnicodeDecodeError):
            out.append(rel)
    return out


def write_all(root: Path, files: dict[str, str], executable: set[str] = frozenset(),
              remove: list[str] = ()) -> list[str]:
    """Write the files that differ, then delete `remove`; returns the paths written. Nothing is
    written or deleted if staging fails."""
    todo = changed(root, files)
    staged: list[tuple[str, Path]] = []
    try:
        for rel in todo:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((rel, Path(tmp)))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(files[rel])
            os.chmod(tmp, 0o755 if rel in executable else 0o644)
    except OSError as exc:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise InputError.one(rel, f"cannot write: {exc}") from None
    for rel, tmp in staged:
        os.replace(tmp, root / rel)
    for rel in remove:
        (root / rel).unlink(missing_ok=True)
    return todo
