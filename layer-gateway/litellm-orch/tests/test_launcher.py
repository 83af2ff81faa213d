"""The gateway's process tree (issue 10, item 2): workers die with their master, the master with
`uv run` above it, and the gateway listens on its configured host:port or not at all.

Stock LiteLLM failed all three: after `kill -9` of its master the workers kept serving the port,
unsupervised; the restarted CLI found the port taken and moved to a random one (on 0.0.0.0 in the
mesh) while reporting success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import procs
import pytest

from meshkit.testing import ServerProcess, free_port, wait_until

ISOLATED = Path(__file__).resolve().parent / "isolated_port_clash.py"


def _seconds_until(predicate, what: str, timeout: float = 30.0) -> float:  # noqa: ANN001
    started = time.monotonic()
    wait_until(predicate, what, timeout, interval=0.1)
    return time.monotonic() - started


def _config(backend: ServerProcess) -> dict:
    return {"model_list": [{"model_name": "jerry-tiny", "litellm_params": {
        "model": "openai/jerry-tiny", "api_base": f"{backend.base}/v1", "api_key": "unused"}}],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY",
                             "custom_auth": "litellm_orch.auth.user_api_key_auth"}}


@pytest.fixture(scope="module")
def backend(logdir: Path) -> Iterator[ServerProcess]:
    proc = procs.start_double(logdir, "launcher-backend")
    yield proc
    proc.stop()


def _start(logdir: Path, backend: ServerProcess, keys: dict[str, str], name: str, port: int | None = None,
           workers: int = 2) -> ServerProcess:
    env = {"LITELLM_MASTER_KEY": keys["master"], "LITELLM_NUM_WORKERS": str(workers)}
    return procs.start_gateway(logdir, _config(backend), env, name=name, port=port)


def _answers(gateway_base: str, keys: dict[str, str]) -> bool:
    try:
        resp = httpx.post(f"{gateway_base}/v1/chat/completions", timeout=10,
                          headers={"Authorization": f"Bearer {keys['master']}"},
                          json={"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}]})
        return resp.status_code == 200
    except httpx.HTTPError:
        return False


def test_workers_die_with_a_killed_master_and_the_restart_binds_only_its_port(
        logdir: Path, backend: ServerProcess, keys: dict[str, str]) -> None:
    gateway = _start(logdir, backend, keys, "launcher-kill")
    master, workers = procs.gateway_tree(gateway)
    try:
        assert len(workers) == 2 and _answers(gateway.base, keys)
        os.kill(master, signal.SIGKILL)
        took = _seconds_until(lambda: not any(procs.alive(w) for w in workers), "the workers to exit after their master")
        print(f"\nworkers gone {took:.1f} s after kill -9 of the master")
        assert not _answers(gateway.base, keys), "something still answers on the gateway's port"
        assert gateway.popen.wait(30) != 0  # `uv run` saw its child die and exited: the supervisor restarts it
    finally:
        gateway.stop()
        for pid in workers:  # only if the test failed: leave nothing behind
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)
    # What the process manager does next: start it again, same host:port.
    again = _start(logdir, backend, keys, "launcher-restart", port=gateway.port)
    try:
        master, workers = procs.gateway_tree(again)
        assert procs.listening([again.popen.pid, master, *workers]) == {("127.0.0.1", gateway.port)}
        assert _answers(again.base, keys)
    finally:
        again.stop()


def test_master_dies_with_the_uv_process_above_it(logdir: Path, backend: ServerProcess, keys: dict[str, str]) -> None:
    gateway = _start(logdir, backend, keys, "launcher-uv-kill")
    master, workers = procs.gateway_tree(gateway)
    try:
        os.kill(gateway.popen.pid, signal.SIGKILL)  # the program supervisord/systemd watches
        gateway.popen.wait(10)
        took = _seconds_until(lambda: not any(procs.alive(p) for p in [master, *workers]), "the gateway to stop", 40)
        print(f"\nmaster and workers gone {took:.1f} s after kill -9 of uv")
        assert not _answers(gateway.base, keys)
    finally:
        gateway.stop()
        for pid in [master, *workers]:  # only if the test failed: leave nothing behind
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_taken_port_is_an_error_never_another_port(tmp_path: Path) -> None:
    """Port 4000 exactly (LiteLLM's CLI only moved away from 4000), in a private network namespace
    so the real mesh's port is not touched: every listening socket there is ours."""
    if subprocess.run(["unshare", "--net", "--map-root-user", "true"], capture_output=True).returncode != 0:
        pytest.fail("needs a private network namespace: `unshare --net --map-root-user` (util-linux, root or "
                    "unprivileged user namespaces enabled)")
    result = subprocess.run(["unshare", "--net", "--map-root-user", sys.executable, str(ISOLATED), str(tmp_path)],
                            env=procs.base_env(UV_PYTHON_DOWNLOADS="never"), capture_output=True, text=True,
                            timeout=240, cwd=procs.SERVICE)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["other_listeners"] == [], f"the gateway listened elsewhere: {report}"
    assert report["exit_code"] not in (None, 0), report
    assert "cannot listen on 127.0.0.1:4000" in report["stderr"] and "already in use" in report["stderr"]
    assert "Traceback" not in report["stderr"]


@pytest.mark.parametrize("args,env,needle", [
    (["--port", "0"], {}, "--port must be between 1 and 65535"),
    (["--workers", "0"], {}, "--workers must be at least 1"),
    (["--config", "/nonexistent/router.yaml"], {}, "cannot read the config"),
    (["--config", "{bad}"], {}, "not valid YAML"),
    (["--config", "{nolist}"], {}, "expected a mapping with a 'model_list' list"),
    ([], {"LITELLM_ORCH_MAX_BODY_BYTES": "lots"}, "LITELLM_ORCH_MAX_BODY_BYTES must be a whole number"),
])
def test_launcher_refuses_bad_input(tmp_path: Path, args: list[str], env: dict[str, str], needle: str) -> None:
    (tmp_path / "bad.yaml").write_text("model_list: [\n")
    (tmp_path / "nolist.yaml").write_text("general_settings: {}\n")
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps({"model_list": []}))
    base = {"--config": str(good), "--host": "127.0.0.1", "--port": str(free_port())}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.replace("{bad}", str(tmp_path / "bad.yaml")).replace("{nolist}", str(tmp_path / "nolist.yaml"))
    cmd = [sys.executable, "-m", "litellm_orch.serve", *[x for kv in base.items() for x in kv]]
    result = subprocess.run(cmd, env=procs.base_env(**env), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
