"""Operating one service: why it died (exit code or signal, log, hint) in up/status/logs;
start/stop/restart; `up` restarting a service whose inputs changed; `down --purge`."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from homelab.runtime import death

from .conftest import FakeMesh, write_mesh
from meshkit.testing import wait_until

BACKEND = "layer-inference/fake-backend/SERVICE_SPEC.md"


@pytest.mark.parametrize(("what", "summary", "hint"), [
    ("exit status 136", "exit 136 = SIGFPE (signal 8)", "arithmetic fault in native code"),
    ("exit status 137", "exit 137 = SIGKILL (signal 9)", "OOM killer"),
    ("terminated by SIGSEGV (core dumped)", "terminated by SIGSEGV (signal 11) (core dumped)",
     "segmentation fault"),
    ("exit status 2", "exit 2", "usage or configuration error"),
    ("exit status 0", "exit 0", "a server must keep running"),
])
def test_exit_descriptions(what: str, summary: str, hint: str) -> None:
    got_summary, got_hint = death.from_exit(what)
    assert got_summary == summary and hint in got_hint


def test_last_death_reads_supervisords_log(tmp_path: Path) -> None:
    log = tmp_path / "supervisord.log"
    log.write_text(
        "2026-12-02 06:00:00,001 INFO spawned: 'ov' with pid 10\n"
        "2026-12-02 06:00:01,002 WARN exited: ov (exit status 136; not expected)\n"
        "2026-12-02 06:00:02,003 INFO gave up: ov entered FATAL state, too many start retries too quickly\n"
        "2026-12-02 06:00:03,004 WARN exited: other (exit status 1; not expected)\n")
    found = death.last_death(log, "ov")
    assert found == death.Death("exit 136 = SIGFPE (signal 8)", death.SIGNAL_HINTS["SIGFPE"],
                                "2026-12-02 06:00:01,002", True)
    assert "gave up" in found.sentence()
    log.write_text(log.read_text() + "2026-12-02 06:01:00,000 INFO success: ov entered RUNNING state\n")
    assert death.last_death(log, "ov") is None  # it came up again: nothing to explain


def test_a_native_crash_is_named_in_up_status_and_logs(tmp_path: Path) -> None:
    """Issue 9 item 3: never just "Exited too quickly"."""
    mesh = write_mesh(tmp_path / "repo", backend_extra=', "--crash-like-uv"')
    try:
        result = mesh.run("up", "--only", "fake-backend", "--timeout", "3")
        assert result.exit_code == 1
        assert "error: fake-backend: not healthy after 3 s" in result.stderr
        assert "last exit: exit 136 = SIGFPE (signal 8)" in result.stderr
        assert "hint: an arithmetic fault in native code" in result.stderr
        assert "fake service: loading the model" in result.stderr  # the log tail
        # Once supervisord gives up (6 failed starts, about 20 s): FATAL, and still the cause.
        wait_until(lambda: mesh.status()["fake-backend"]["state"] == "FATAL", "FATAL", 120)
        row = mesh.status()["fake-backend"]
        assert row["problem"] == "died: exit 136 = SIGFPE (signal 8) (supervisord gave up restarting it)"
        assert "dmesg" in row["hint"] and row["healthy"] is False
        table = mesh.run("status")
        assert "SIGFPE" in table.stdout and "Exited too quickly" not in table.stdout
        logs = mesh.run("logs", "fake-backend", "-n", "3")
        assert "loading the model" in logs.stdout
        assert "fake-backend is FATAL: died: exit 136 = SIGFPE (signal 8)" in logs.stderr
        assert "hint: an arithmetic fault" in logs.stderr
    finally:
        mesh.run("down")


def test_stop_keeps_a_service_down_start_and_restart_bring_it_back(fake_mesh: FakeMesh) -> None:
    assert fake_mesh.run("up").exit_code == 0
    first = fake_mesh.status()["fake-backend"]["pid"]
    stopped = fake_mesh.run("stop", "fake-backend")
    assert stopped.exit_code == 0 and "fake-backend  stopped" in stopped.stdout
    # supervisord does not restart a stopped program (this is how a fallback is watched).
    for _ in range(3):
        row = fake_mesh.status()["fake-backend"]
        assert row["state"] == "STOPPED" and row["healthy"] is False
    assert fake_mesh.status()["fake-gw"]["healthy"]
    assert fake_mesh.run("stop", "nope").exit_code == 2
    started = fake_mesh.run("start", "fake-backend")
    assert started.exit_code == 0 and "fake-backend  healthy" in started.stdout
    second = fake_mesh.status()["fake-backend"]["pid"]
    assert second not in (None, first)
    restarted = fake_mesh.run("restart", "fake-backend")
    assert restarted.exit_code == 0, restarted.output
    assert "fake-backend  stopped" in restarted.stdout and "fake-backend  healthy" in restarted.stdout
    assert fake_mesh.status()["fake-backend"]["pid"] not in (None, second)
    assert fake_mesh.status()["fake-gw"]["healthy"]


def test_up_restarts_a_service_whose_inputs_changed_and_says_why(fake_mesh: FakeMesh) -> None:
    router = fake_mesh.root / "layer-gateway/fake-gw/config/router.yaml"
    router.parent.mkdir(parents=True, exist_ok=True)
    router.write_text("model_list: []\n")
    assert fake_mesh.run("up").exit_code == 0
    before = {n: s["pid"] for n, s in fake_mesh.status().items()}
    router.write_text("model_list: []\n# a new route\n")  # what `homelab render` does
    again = fake_mesh.run("up")
    assert again.exit_code == 0, again.output
    assert ("fake-gw: restarting: changed since it started: layer-gateway/fake-gw/config/router.yaml"
            in again.stdout)
    after = {n: s["pid"] for n, s in fake_mesh.status().items()}
    assert after["fake-gw"] != before["fake-gw"] and after["fake-backend"] == before["fake-backend"]
    spec = fake_mesh.root / BACKEND
    spec.write_text(spec.read_text().replace('default: "tiny"', 'default: "small"'))
    third = fake_mesh.run("up")
    assert "fake-backend: restarting: changed since it started: " \
           "its environment (env files, secrets, defaults), layer-inference/fake-backend/SERVICE_SPEC.md" \
           in third.stdout
    assert fake_mesh.run("up").stdout.count("already running, healthy") == 2  # and then nothing


def test_down_purge_keeps_secrets_unless_asked(fake_mesh: FakeMesh) -> None:
    assert fake_mesh.run("up").exit_code == 0
    state = fake_mesh.root / ".homelab"
    env_local = fake_mesh.root / "layer-gateway/fake-gw/config/env.local"
    assert (state / "logs").is_dir() and env_local.is_file()
    purged = fake_mesh.run("down", "--purge")
    assert purged.exit_code == 0, purged.output
    assert sorted(p.name for p in state.iterdir()) == ["secrets.env"]
    assert env_local.is_file() and "kept the secrets" in purged.stdout
    again = fake_mesh.run("down", "--purge", "--purge-secrets")
    assert again.exit_code == 0 and list(state.iterdir()) == [] and not env_local.exists()
    assert fake_mesh.run("down", "--purge-secrets").exit_code == 2


def test_status_json_has_problem_and_hint_fields(fake_mesh: FakeMesh) -> None:
    assert fake_mesh.run("up").exit_code == 0
    rows = fake_mesh.status()
    assert rows["fake-backend"]["problem"] == "" and rows["fake-backend"]["healthy"] is True
    os.killpg(rows["fake-backend"]["pid"], signal.SIGSTOP)  # frozen: health times out
    try:
        row = wait_until(lambda: (r := fake_mesh.status()["fake-backend"])["healthy"] is False and r,
                       "the frozen backend to be unhealthy")
        # supervisord calls it alive; status says what the probe saw.
        assert row["state"] in ("RUNNING", "STARTING") and row["problem"].startswith("health: ")
    finally:
        os.killpg(rows["fake-backend"]["pid"], signal.SIGCONT)
    assert json.loads(fake_mesh.run("status", "--json").stdout)["supervisord"] is True
