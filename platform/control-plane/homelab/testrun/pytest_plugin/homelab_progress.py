"""pytest plugin that `homelab test` loads into every pytest suite (`-p homelab_progress`, this
folder on PYTHONPATH). It keeps $HOMELAB_TEST_PROGRESS (a JSON file) saying which test is running
and the suite's per-test timeout, so a suite the runner kills at its wall clock can name the test
it was stuck in. Standard library only: it runs inside every suite's own environment."""

from __future__ import annotations

import json
import os
from typing import Any

_state: dict[str, Any] = {"phase": "starting", "test": None, "per_test_timeout_s": None}


def _write(**changes: Any) -> None:
    path = os.environ.get("HOMELAB_TEST_PROGRESS")
    if not path:
        return
    _state.update(changes)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_state, fh)
    os.replace(tmp, path)  # the runner never reads half a file


def pytest_configure(config: Any) -> None:
    timeout = None
    if config.pluginmanager.hasplugin("timeout"):  # pytest-timeout
        try:
            timeout = float(config.getini("timeout") or 0) or None
        except (ValueError, TypeError):
            timeout = None
        if getattr(config.option, "timeout", None):
            timeout = float(config.option.timeout)
    _write(phase="collecting", per_test_timeout_s=timeout)


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _write(phase="running", test=nodeid)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _write(phase="between tests", test=nodeid)


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    _write(phase="finishing")
