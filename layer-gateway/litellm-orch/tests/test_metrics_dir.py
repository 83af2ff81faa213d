"""The launcher's own metrics folder (no LITELLM_ORCH_METRICS_DIR): a SIGKILLed launcher cannot
remove it, so the next launcher removes every such folder whose launcher pid is gone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from litellm_orch import metrics


def test_orphaned_folders_of_dead_launchers_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(metrics.DIR_ENV, raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # recorded, so the test's value is undone
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    dead_pid = max(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()) + 1_000_000
    dead = tmp_path / f"{metrics.TEMP_PREFIX}{dead_pid}-abc"
    alive = tmp_path / f"{metrics.TEMP_PREFIX}{os.getppid()}-def"  # a running launcher's
    stranger = tmp_path / f"{metrics.TEMP_PREFIX}notapid"
    for folder in (dead, alive, stranger):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")
    made = Path(metrics.prepare_dir())
    assert made.parent == tmp_path and made.name.startswith(f"{metrics.TEMP_PREFIX}{os.getpid()}-")
    assert not dead.exists() and alive.exists() and stranger.exists()
    metrics.remove_dir(str(made))
    assert not made.exists()
