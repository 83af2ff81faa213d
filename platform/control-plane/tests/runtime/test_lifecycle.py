"""up / status / logs / health / down against a synthetic mesh of fake services."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from homelab.runtime import procfs
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.supervisor import Supervisor, _alive
from meshkit.testing import wait_until

from .conftest import FakeMesh, write_mesh


def test_up_is_idempotent_restarts_crashes_and_down_leaves_nothing(fake_mesh: FakeMesh) -> None:
    first = fake_mesh.run("up")
    assert first.exit_code == 0, first.output
    assert "fake-backend  healthy" in first.stdout and "fake-gw       healthy" in first.stdout
    assert f"gateway: http://127.0.0.1:{fake_mesh.ports['fake-gw']}/v1" in first.stdout
    assert "grep ^GW_MASTER_KEY= layer-gateway/fake-gw/config/env.local" in first.stdout
    env_local = fake_mesh.root / "layer-gateway/fake-gw/config/env.local"
    assert env_local.stat().st_mode & 0o077 == 0
    conf = fake_mesh.root / ".homelab/run/supervisord.conf"
    conf_before = conf.read_text()

    before = fake_mesh.status()
    assert before["fake-backend"]["healthy"] and before["fake-gw"]["healthy"]
    assert before["fake-ui"]["state"] == "STOPPED"  # opt-in: configured, not started

    second = fake_mesh.run("up")
    assert second.exit_code == 0, second.output
    assert second.stdout.count("already running, healthy") == 2
    after = fake_mesh.status()
    assert {n: s["pid"] for n, s in after.items()} == {n: s["pid"] for n, s in before.items()}
    assert conf.read_text() == conf_before

    # A crash: supervisord restarts the backend and it is healthy again.
    old_pid = after["fake-backend"]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: (s := fake_mesh.status()["fake-backend"])["pid"] not in (None, old_pid)
             and s["healthy"], "the backend to be restarted")

    health = fake_mesh.run("health", "--json")
    assert health.exit_code == 0, health.output
    results = {r["service"]: r for r in json.loads(health.stdout)}
    assert results["fake-backend"]["ok"] and results["fake-gw"]["ok"]
    assert not results["fake-ui"]["ok"] and not results["fake-ui"]["required"]

    logs = fake_mesh.run("logs", "fake-backend", "-n", "5")
    assert logs.exit_code == 0 and "fake service listening" in logs.stdout

    pgids = {s["pid"] for s in fake_mesh.status().values() if s["pid"]}
    sup_pid = Supervisor(RuntimePaths(fake_mesh.root)).pid()
    down = fake_mesh.run("down")
    assert down.exit_code == 0, down.output
    assert "stopped 2 service(s) and supervisord" in down.stdout
    assert procfs.process_group_members(pgids) == []
    assert sup_pid and not _alive(sup_pid)  # gone (a zombie awaiting its reaper counts as gone)
    for port in (fake_mesh.ports["fake-backend"], fake_mesh.ports["fake-gw"]):
        assert not procfs.in_use("127.0.0.1", port)
    assert fake_mesh.run("down").stdout.strip() == "mesh is not running"
    status = fake_mesh.run("status", "--json")
    assert status.exit_code == 1 and not json.loads(status.stdout)["supervisord"]
    table = fake_mesh.run("health")
    assert table.exit_code == 1  # required services are down
    assert "fake-backend" in table.stdout and "connection refused" in table.stdout
    assert "0/3 healthy, 2 required down" in table.stdout


def test_down_kills_child_processes_of_a_service(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo", backend_extra=', "--child"')
    try:
        assert mesh.run("up", "--only", "fake-backend").exit_code == 0
        pgid = mesh.status()["fake-backend"]["pid"]
        members = procfs.process_group_members({pgid})
        assert len(members) == 2  # the service and its child, like `uv run` + python
        assert mesh.run("down").exit_code == 0
        assert procfs.process_group_members({pgid}) == []
    finally:
        mesh.run("down")


def test_foreign_port_starts_nothing(fake_mesh: FakeMesh) -> None:
    port = fake_mesh.ports["fake-gw"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = fake_mesh.run("up")
    assert result.exit_code == 1
    assert f"error: port {port} (fake-gw) is already in use by another process" in result.stderr
    assert "nothing was started" in result.stderr
    assert not Supervisor(RuntimePaths(fake_mesh.root)).running()
    assert not procfs.in_use("127.0.0.1", fake_mesh.ports["fake-backend"])


def test_with_adds_opt_in_and_unknown_names_exit_2(fake_mesh: FakeMesh) -> None:
    bad = fake_mesh.run("up", "--only", "nope")
    assert bad.exit_code == 2 and "--only nope: no such service" in bad.stderr
    assert fake_mesh.run("logs", "nope").exit_code == 2
    result = fake_mesh.run("up", "--with", "fake-ui")
    assert result.exit_code == 0, result.output
    assert all(s["healthy"] for s in fake_mesh.status().values())
    # A later plain `up` leaves the opt-in service running.
    assert fake_mesh.run("up").exit_code == 0
    assert fake_mesh.status()["fake-ui"]["state"] in ("RUNNING", "STARTING")


def test_failing_service_reports_log_tail(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo", backend_extra=', "--fail"')
    try:
        result = mesh.run("up", "--timeout", "3")
        assert result.exit_code == 1
        assert "error: fake-backend:" in result.stderr
        assert "failing on purpose" in result.stderr  # the tail of its log
        assert "fake-gw       healthy" not in result.stdout  # nothing after a failed dependency
    finally:
        mesh.run("down")


def test_missing_command_starts_nothing(fake_mesh: FakeMesh) -> None:
    spec = fake_mesh.root / "layer-gateway/fake-gw/SERVICE_SPEC.md"
    text = spec.read_text()
    spec.write_text(text.replace("command: [", "command: [scripts/missing.sh, ", 1))
    result = fake_mesh.run("up")
    assert result.exit_code == 1
    assert ("fake-gw: command not found or not executable: "
            "layer-gateway/fake-gw/scripts/missing.sh") in result.stderr
    assert not Supervisor(RuntimePaths(fake_mesh.root)).running()


def test_optional_service_failing_is_a_warning(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    spec = mesh.root / "layer-interface/fake-ui/SERVICE_SPEC.md"
    spec.write_text(spec.read_text().replace('"{port}"]', '"{port}", --fail]'))
    try:
        result = mesh.run("up", "--with", "fake-ui", "--timeout", "2")
        assert result.exit_code == 0, result.output
        assert "warning: fake-ui (optional):" in result.stderr
        assert "fake-gw       healthy" in result.stdout
    finally:
        mesh.run("down")


def test_down_cleans_up_after_a_dead_supervisord(fake_mesh: FakeMesh) -> None:
    assert fake_mesh.run("up").exit_code == 0
    pids = {s["pid"] for s in fake_mesh.status().values() if s["pid"]}
    sup_pid = Supervisor(RuntimePaths(fake_mesh.root)).pid()
    os.kill(sup_pid, signal.SIGKILL)  # the services are orphaned, still holding their ports
    wait_until(lambda: not _alive(sup_pid), "supervisord to die")
    result = fake_mesh.run("down")
    assert result.exit_code == 0 and "leftover process(es)" in result.stdout
    assert not any(_alive(pid) for pid in pids)
    assert fake_mesh.run("up").exit_code == 0  # ports free again, a stale socket is no obstacle


def test_unusable_input_exits_2_without_starting(fake_mesh: FakeMesh) -> None:
    etc = Path("/nonexistent/homelab-test")  # the fake backend's env file: not writable here
    spec = fake_mesh.root / "layer-inference/fake-backend/SERVICE_SPEC.md"
    text = spec.read_text()
    spec.write_text(text.replace('default: "tiny"', 'default: "a ;b"'))
    bad_value = fake_mesh.run("up")
    assert bad_value.exit_code == 2
    assert "fake-backend: env FAKE_MODE: contains whitespace followed by ';'" in bad_value.stderr
    spec.write_text(text.replace("run:\n", "run:\n  after: [fake-gw]\n"))
    cycle = fake_mesh.run("up")
    assert cycle.exit_code == 2 and "run.after forms a cycle" in cycle.stderr
    assert not Supervisor(RuntimePaths(fake_mesh.root)).running()
    assert not etc.exists()


def test_prepare_runs_in_the_service_env_and_a_failure_starts_nothing(fake_mesh: FakeMesh) -> None:
    spec = fake_mesh.root / "layer-inference/fake-backend/SERVICE_SPEC.md"
    text = spec.read_text()
    write = ("import os, pathlib; "
             "pathlib.Path('prepared').write_text(os.environ['FAKE_MODE'] + ' {port}')")
    prepare = f"  prepare: [[{json.dumps(sys.executable)}, -c, {json.dumps(write)}]]\n"
    spec.write_text(text.replace("run:\n", "run:\n" + prepare, 1))
    result = fake_mesh.run("up")
    assert result.exit_code == 0, result.output
    # In the service's workdir, with its environment (the contract default) and placeholders filled.
    marker = fake_mesh.root / "layer-inference/fake-backend/prepared"
    assert marker.read_text() == f"tiny {fake_mesh.ports['fake-backend']}"
    assert fake_mesh.run("down").exit_code == 0

    fail = json.dumps("import sys; print('no artefact for you'); sys.exit(3)")
    spec.write_text(text.replace("run:\n", f"run:\n  prepare: [[{json.dumps(sys.executable)}, -c, {fail}]]\n", 1))
    result = fake_mesh.run("up")
    assert result.exit_code == 1
    assert "fake-backend: run.prepare" in result.stderr and "failed (exit 3)" in result.stderr
    assert "no artefact for you" in result.stderr  # the tail of its output
    assert not Supervisor(RuntimePaths(fake_mesh.root)).running()


def test_health_models_says_which_public_names_are_servable(fake_mesh: FakeMesh) -> None:
    assert fake_mesh.run("up").exit_code == 0
    result = fake_mesh.run("health", "--models", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"name": "jerry-fake", "state": "up", "path": "fake-backend"}]
    table = fake_mesh.run("health", "--models")
    assert "jerry-fake" in table.stdout and "1/1 public names servable" in table.stdout
    assert fake_mesh.run("down").exit_code == 0
    down = fake_mesh.run("health", "--models", "--json")
    assert down.exit_code == 1
    assert json.loads(down.stdout) == [{"name": "jerry-fake", "state": "down", "path": "gateway fake-gw is down"}]
