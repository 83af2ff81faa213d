"""Write a planned bundle into a directory (the only I/O of `homelab bundle`)."""

from __future__ import annotations

import json
from pathlib import Path

from homelab.deploy.model import MANIFEST_JSON
from homelab.errors import InputError
from homelab.render.writer import write_all


def _previous_files(out: Path) -> list[str]:
    """Files a previous bundle in `out` listed (so --force removes what the new one drops)."""
    try:
        data = json.loads((out / MANIFEST_JSON).read_text(encoding="utf-8"))
        return [str(f["path"]) for f in data.get("files", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []


def _inside(out: Path, rel: str) -> Path | None:
    path = (out / rel).resolve()
    return path if path.is_relative_to(out.resolve()) else None


def usable_out(out: Path, force: bool) -> None:
    """Fail (exit 2) before any work when `out` cannot take a bundle."""
    if out.exists() and not out.is_dir():
        raise InputError.one(out, "--out exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError.one(out, "--out directory is not empty; pass --force to replace the "
                                  "bundle in it (other files there are left alone)")


def write_bundle(out: Path, files: dict[str, str], executable: set[str], force: bool) -> list[str]:
    """Write every file; returns the paths written. A non-empty `out` needs force; with force,
    files of a previous bundle that the new one no longer has are removed, nothing else is."""
    usable_out(out, force)
    if out.is_dir():
        for rel in _previous_files(out):
            path = _inside(out, rel)
            if rel not in files and path is not None and path.is_file():
                path.unlink()
                parent = path.parent
                while parent != out.resolve() and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.one(out, f"cannot create --out directory: {exc}") from None
    return write_all(out, files, executable)
