"""Slim install, lint, unit file, and no network at start-up."""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from conftest import SERVICE, START, start_optillm

UNIT = Path(__file__).resolve().parents[3] / "platform/ops/systemd/homelab-optillm-proxy.service"  # rendered by homelab


@pytest.mark.parametrize("heavy", ["torch", "transformers", "gradio", "spacy", "litellm"])
def test_slim_install_has_no_heavy_packages(heavy: str) -> None:
    assert importlib.util.find_spec(heavy) is None


def test_optillm_server_imports() -> None:
    import optillm.server  # noqa: F401  the whole approach set must import without torch


def test_shellcheck_clean() -> None:
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is required (apt-get install -y shellcheck)")
    result = subprocess.run(["shellcheck", str(START)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is required (apt-get install -y systemd)")
    text = UNIT.read_text()
    assert "--host 127.0.0.1 --port 4020" in text and "UnsetEnvironment=OPTILLM_API_KEY" in text
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/homelab-llm", str(SERVICE.parent.parent)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_outbound_connection_at_start_up(logdir: Path, upstream: str) -> None:
    if not shutil.which("strace"):
        pytest.fail("strace is required (apt-get install -y strace)")
    trace = logdir / "optillm-start.strace"
    run = start_optillm(logdir, f"{upstream}/v1", name="optillm-traced",
                        wrapper=["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace)])
    try:
        assert requests.get(f"{run.base}/health").status_code == 200
    finally:
        run.stop()
    remote = []
    for v4, v6 in re.findall(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', trace.read_text()):
        addr = ipaddress.ip_address(v4 or v6)
        if not (addr.is_loopback or addr.is_unspecified):
            remote.append(str(addr))
    assert remote == []
