"""End to end across two hosts: network namespaces joined by a veth pair.

Host `gateway` (namespace A) runs LiteLLM bound to every address and OptiLLM on its loopback;
host `inference` (namespace B) runs ov-server on its LAN address with a LAN approval. The mesh is
a copy of this checkout rewritten to those two hosts, rendered and checked by the control plane;
each program runs with the command its contract declares, from the copy, on the ports its contract
declares (free inside fresh namespaces). Service environments are synced before anything runs
inside a namespace, where there is no network but the veth.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from homelab.addresses import health_url
from homelab.load.repo import Repo, load_repo
from homelab.render.systemd import command_args

from .netns import Host, Pair, unavailable
from .twohost import REPO, TwoHosts, copy_checkout, drop_approval, homelab, make_two_hosts

SERVICES = ("ov-server", "litellm-orch", "optillm-proxy")
# Per test; the first one also starts the three services (module fixture).
pytestmark = pytest.mark.timeout(1200)
START_TIMEOUT_S = 180  # ~6-30 s normally; more only on a machine busy with other work
# Synced environments survive between runs (they are hard links into uv's cache): a rerun only
# reinstalls each service's own package. One set per checkout, used by one run at a time (the
# fixture holds VENVS/.lock): another checkout's run on this machine syncing the same venvs to its
# own sources made `uv run` rebuild, offline, inside the namespace, and fail.
VENVS = Path(os.environ.get("HOMELAB_MULTIHOST_VENVS")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "homelab-llm" / "multihost-venvs"
             / hashlib.sha256(str(REPO).encode()).hexdigest()[:12])
COMMON_ENV = {
    "CI": "true", "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1", "UV_FROZEN": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    "PYTHONUNBUFFERED": "1", "NO_COLOR": "1",
}


@dataclass
class TwoHostMesh:
    two: TwoHosts
    repo: Repo
    pair: Pair
    gw: Host
    inf: Host
    keys: dict[str, str]
    logs: dict[str, Path]
    baseline: set[tuple[str, str, str]]  # `check` violations of the unmodified copy

    def log(self, service: str) -> str:
        return self.logs[service].read_text(errors="replace")


def _runnable(root: Path, repo: Repo) -> str | None:
    """Why a service of the mesh cannot run from this checkout, or None."""
    for name in SERVICES:
        svc = repo.services.get(name)
        if svc is None:
            return f"{name} has no contract"
        folder = root / svc.rel_dir
        for need in ("pyproject.toml", "uv.lock"):
            if not (folder / need).is_file():
                return f"{name} cannot run: {svc.rel_dir}/{need} is missing"
        exe = svc.spec.run.command[0]
        if "/" in exe and not (folder / exe).is_file():
            return f"{name} cannot run: {svc.rel_dir}/{exe} is missing"
    return None


def _sync(folder: Path, venv: Path) -> None:
    """uv sync from the root namespace (the only place with a package index)."""
    out = subprocess.run(["uv", "sync", "--frozen", "--project", str(folder)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv),
                              "UV_PYTHON_DOWNLOADS": "never"})
    assert out.returncode == 0, f"uv sync of {folder.name} failed:\n{out.stderr[-3000:]}"


def _env(repo: Repo, name: str, keys: dict[str, str], tmp: Path) -> dict[str, str]:
    spec = repo.services[name].spec
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp / "home"), **COMMON_ENV,
           "UV_PROJECT_ENVIRONMENT": str(VENVS / name)}
    if "UV_CACHE_DIR" in os.environ:
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    env.update({v.name: v.default for v in spec.env if v.default is not None})
    env.update({v.name: keys[v.name] for v in spec.env if v.name in keys})
    if name == "litellm-orch":
        env["LITELLM_LOG"] = "INFO"  # start.sh defaults to ERROR: a failed start would say nothing
    if name == "ov-server":
        (tmp / "ov-server.env").write_text("")  # not the machine's /etc/homelab-llm/ov-server.env
        env.update(OV_SERVER_ENV_FILE=str(tmp / "ov-server.env"), OV_SERVER_MODEL_DIR=str(tmp / "models"))
    return env


def _violations(root: Path) -> set[tuple[str, str, str]]:
    out = homelab(root, "check", "--json")
    assert out.returncode in (0, 1), out.stderr
    return {(v["path"], v["code"], v["message"]) for v in json.loads(out.stdout)["violations"]}


def _curl(pair: Pair, host: Host, url: str, *, key: str | None = None, body: dict | None = None,
          timeout: int = 60) -> tuple[int, int, str]:
    """(curl exit code, HTTP status, body) of a request made from inside `host`."""
    cmd = ["curl", "-sS", "-m", str(timeout), "-w", "\n%{http_code}", url]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = pair.run(host, cmd, timeout=timeout + 10)
    text, _, code = out.stdout.rpartition("\n")
    return out.returncode, int(code or 0), text + (out.stderr if out.returncode else "")


def _wait_healthy(mesh: TwoHostMesh, host: Host, name: str, proc: subprocess.Popen[bytes]) -> None:
    url = health_url(mesh.repo, mesh.repo.services[name], local=True)
    assert url
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode} before it was healthy:\n"
                        f"{mesh.log(name)[-3000:]}")
        rc, status, _ = _curl(mesh.pair, host, url, timeout=3)
        if rc == 0 and status == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"{name} not healthy at {url} after {START_TIMEOUT_S}s:\n{mesh.log(name)[-3000:]}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHostMesh]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the module's mesh is torn down
        yield from _started_mesh(tmp_path_factory)


def _started_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHostMesh]:
    tmp = tmp_path_factory.mktemp("netns")
    root = copy_checkout(tmp / "repo")
    if reason := _runnable(root, load_repo(root)):
        pytest.fail(reason)
    for name in SERVICES:  # before any namespace exists: there is no network inside them
        _sync(root / load_repo(root).services[name].rel_dir, VENVS / name)

    baseline = _violations(root)
    pair = Pair.create()
    try:
        two = make_two_hosts(root, pair.a.address, pair.b.address)
        rendered = homelab(root, "render")
        assert rendered.returncode == 0, rendered.stderr
        repo = load_repo(root)
        keys = {"LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(16),
                "OV_SERVER_API_KEY": secrets.token_hex(16),
                "OPTILLM_PROXY_KEY": "optillm-" + secrets.token_hex(16)}
        mesh = TwoHostMesh(two, repo, pair, pair.a, pair.b, keys,
                    {n: tmp / f"{n}.log" for n in SERVICES}, baseline)
        placed = {"ov-server": mesh.inf, "litellm-orch": mesh.gw, "optillm-proxy": mesh.gw}
        procs = {}
        for name in SERVICES:
            svc = repo.services[name]
            folder = root / svc.rel_dir
            cmd = command_args(repo, svc, str(folder), str(root))
            procs[name] = pair.spawn(placed[name], cmd, cwd=folder,
                                     env=_env(repo, name, keys, tmp), log=mesh.logs[name])
        for name in SERVICES:
            _wait_healthy(mesh, placed[name], name, procs[name])
        yield mesh
    finally:
        pair.close()


CHAT = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}


def _served_from(mesh: TwoHostMesh, address: str) -> int:
    """Chat completions ov-server's access log shows as coming from `address`."""
    pattern = re.compile(rf"{re.escape(address)}:\d+ - \"POST /v1/chat/completions")
    return len(pattern.findall(mesh.log("ov-server")))


def test_contracts_place_the_services_on_two_hosts(mesh: TwoHostMesh) -> None:
    """`homelab render` + `homelab check` accept the two-host mesh that is running: no violation
    the unmodified checkout does not already have (none at all once the checkout is clean)."""
    spec = mesh.repo.services["ov-server"].spec
    assert (spec.host, spec.bind, spec.exposure) == ("inference", mesh.inf.address, "lan")
    assert mesh.repo.services["optillm-proxy"].spec.host == "gateway"
    new = _violations(mesh.two.root) - mesh.baseline
    assert not new, sorted(new)


def test_a_completion_through_the_gateway_is_served_on_the_other_host(mesh: TwoHostMesh) -> None:
    before = _served_from(mesh, mesh.gw.address)
    rc, status, body = _curl(mesh.pair, mesh.gw, f"http://{mesh.gw.address}:4000/v1/chat/completions",
                             key=mesh.keys["LITELLM_MASTER_KEY"], body={"model": "jerry-tiny", **CHAT})
    assert (rc, status) == (0, 200), body
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["role"] == "assistant"
    # ov-server saw the request arrive over the veth from the gateway host's address.
    assert _served_from(mesh, mesh.gw.address) == before + 1, mesh.log("ov-server")[-2000:]


def test_a_client_on_the_inference_host_uses_the_gateway(mesh: TwoHostMesh) -> None:
    rc, status, body = _curl(mesh.pair, mesh.inf, f"http://{mesh.gw.address}:4000/v1/chat/completions",
                             key=mesh.keys["LITELLM_MASTER_KEY"], body={"model": "jerry-tiny", **CHAT})
    assert (rc, status) == (0, 200), body


def test_optillm_alias_runs_through_the_gateway_and_back_across_hosts(mesh: TwoHostMesh) -> None:
    """jerry-tiny-re2: gateway -> OptiLLM (gateway host loopback) -> gateway -> ov-server (other
    host), answered. OptiLLM refuses upstream answers cut off by max_tokens; jerry-tiny ends its
    answers by itself after ~10 tokens, so a generous max_tokens makes that a non-issue."""
    before = _served_from(mesh, mesh.gw.address)
    rc, status, body = _curl(mesh.pair, mesh.gw, f"http://{mesh.gw.address}:4000/v1/chat/completions",
                             key=mesh.keys["LITELLM_MASTER_KEY"],
                             body={"model": "jerry-tiny-re2", **CHAT, "max_tokens": 256}, timeout=120)
    optillm_log = mesh.log("optillm-proxy")
    assert (rc, status) == (0, 200), body + optillm_log[-2000:]
    assert _served_from(mesh, mesh.gw.address) > before, optillm_log[-2000:]
    assert "POST /v1/chat/completions" in optillm_log  # werkzeug colours the line: no quote


def test_optillm_is_unreachable_from_the_other_host_while_the_gateway_answers(mesh: TwoHostMesh) -> None:
    rc, _, err = _curl(mesh.pair, mesh.inf, f"http://{mesh.gw.address}:4020/health", timeout=5)
    assert rc == 7, err  # curl 7: connection refused; OptiLLM listens on the gateway's loopback
    rc, status, body = _curl(mesh.pair, mesh.inf, f"http://{mesh.gw.address}:4000/health/liveliness",
                             timeout=10)
    assert (rc, status) == (0, 200), body
    # ...and on the gateway host itself OptiLLM does answer, on loopback.
    rc, status, _ = _curl(mesh.pair, mesh.gw, "http://127.0.0.1:4020/health", timeout=10)
    assert (rc, status) == (0, 200)


def test_the_lan_bound_backend_demands_the_gateway_key(mesh: TwoHostMesh) -> None:
    url = f"http://{mesh.inf.address}:4010/v1/chat/completions"
    rc, status, _ = _curl(mesh.pair, mesh.gw, url, body={"model": "jerry-tiny", **CHAT})
    assert (rc, status) == (0, 401)
    rc, status, body = _curl(mesh.pair, mesh.gw, url, key=mesh.keys["OV_SERVER_API_KEY"],
                             body={"model": "jerry-tiny", **CHAT})
    assert (rc, status) == (0, 200), body


def test_an_unapproved_lan_bind_fails_check(mesh: TwoHostMesh, tmp_path: Path) -> None:
    root = Path(shutil.copytree(mesh.two.root, tmp_path / "repo"))  # the running mesh stays as is
    drop_approval(root)
    out = homelab(root, "check")
    assert out.returncode == 1
    hl301 = [line for line in out.stdout.splitlines() if " HL301 " in line]
    assert hl301 and "ov-server" in hl301[0], out.stdout
