"""Start script, gateway check script and systemd unit: lint, refuse bad input, work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import procs
import pytest

from meshkit.testing import ServerProcess, free_port

SCRIPTS = procs.SERVICE / "scripts"
START = SCRIPTS / "start.sh"
CHECK = SCRIPTS / "health-check.sh"
UNIT = Path(__file__).resolve().parents[3] / "platform/ops/systemd/homelab-litellm-orch.service"  # rendered by homelab


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=procs.base_env(**env), capture_output=True, text=True, timeout=120,
                          cwd=procs.SERVICE)


@pytest.mark.parametrize("script", [START, CHECK], ids=lambda p: p.name)
def test_shellcheck_clean(script: Path) -> None:
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is required (apt-get install -y shellcheck)")
    result = _run(["shellcheck", str(script)])
    assert result.returncode == 0, result.stdout


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is required (apt-get install -y systemd)")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/homelab-llm", str(procs.REPO)))
    result = _run(["systemd-analyze", "verify", str(unit)])
    assert result.returncode == 0, result.stderr
    assert "--port 4000" in UNIT.read_text() and "--host 0.0.0.0" in UNIT.read_text()


@pytest.mark.parametrize("args,env,needle", [
    (["--bogus"], {"LITELLM_MASTER_KEY": "sk-x"}, "unknown argument"),
    (["--port", "abc"], {"LITELLM_MASTER_KEY": "sk-x"}, "--port must be a number"),
    (["--config", "/nonexistent.yaml"], {"LITELLM_MASTER_KEY": "sk-x"}, "config file not found"),
    ([], {"LITELLM_MASTER_KEY": "not-sk"}, "must start with 'sk-'"),
    ([], {"LITELLM_MASTER_KEY": "sk-x", "OPTILLM_PROXY_KEY": "sk-bad"}, "must NOT start with 'sk-'"),
])
def test_start_script_refuses_bad_input(args: list[str], env: dict[str, str], needle: str) -> None:
    result = _run([str(START), "--port", "1", *args], **env)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_health_check_passes_on_the_running_gateway(gateway: ServerProcess, keys: dict[str, str]) -> None:
    result = _run([str(CHECK), "--url", gateway.base], LITELLM_MASTER_KEY=keys["master"])
    assert result.returncode == 0, result.stdout
    for name in ("liveliness", "readiness", "no-key", "wrong-key", "models"):
        assert f"ok    {name}" in result.stdout


def test_health_check_fails_when_nothing_listens() -> None:
    result = _run([str(CHECK), "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    assert result.returncode == 1
    assert "FAIL  liveliness" in result.stdout


def test_health_check_rejects_bad_usage() -> None:
    assert _run([str(CHECK), "--nope"]).returncode == 2
