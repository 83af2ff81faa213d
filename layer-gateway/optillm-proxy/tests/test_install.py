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
from conftest import PROXY_KEY, SERVICE, START, start_optillm

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


def test_no_outbound_connection_at_start_up_or_per_request(logdir: Path, upstream: str) -> None:
    """Every connect() from exec through /health and an approach request goes to loopback, and the
    trace did see the approach's calls to the (stand-in) gateway, so it is known to work."""
    if not shutil.which("strace"):
        pytest.fail("strace is required (apt-get install -y strace)")
    trace = logdir / "optillm-start.strace"
    run = start_optillm(logdir, f"{upstream}/v1", name="optillm-traced",
                        wrapper=["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace)])
    try:
        assert requests.get(f"{run.base}/health").status_code == 200
        resp = requests.post(f"{run.base}/v1/chat/completions", timeout=60,
                             headers={"Authorization": f"Bearer {PROXY_KEY}"},
                             json={"model": "moa-jerry-tiny", "max_tokens": 32,
                                   "messages": [{"role": "user", "content": "What is 2 + 2?"}]})
        assert resp.status_code == 200, resp.text
    finally:
        run.stop()
    text = trace.read_text()
    remote = []
    for v4, v6 in re.findall(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', text):
        addr = ipaddress.ip_address(v4 or v6)
        if not (addr.is_loopback or addr.is_unspecified
                or (addr.version == 6 and addr.ipv4_mapped and addr.ipv4_mapped.is_loopback)):
            remote.append(str(addr))
    assert remote == []
    upstream_port = upstream.rsplit(":", 1)[1]
    to_upstream = re.findall(rf'sin_port=htons\({upstream_port}\), sin_addr=inet_addr\("127\.0\.0\.1"\)', text)
    assert to_upstream, "the trace saw no connection to the gateway: the check would be vacuous"
