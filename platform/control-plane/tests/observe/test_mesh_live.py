"""Prometheus and `homelab top` against a real mesh: ov-server, the LiteLLM gateway and
Prometheus brought up by `homelab up` on a private copy of this repository, inside a network
namespace (the mesh keeps its real ports and meets nobody else's). Steps share the mesh and run
in file order; a step whose prerequisite failed is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from meshkit.testing import Netns
from meshkit.testing import netns_unavailable as unavailable
from meshkit.testing.netns import HOMELAB_CLI as CLI

from homelab.load.repo import load_repo
from homelab.observe import exposition, names
from homelab.render import grafana
from homelab.runtime import envfiles

from .test_render_observe import metric_names

REAL_REPO = Path(__file__).resolve().parents[4]
RUN = ["ov-server", "litellm-orch", "prometheus"]
PROM = "http://127.0.0.1:9090"
SPEC = "layer-observability/prometheus/SERVICE_SPEC.md"


def _why_not() -> str | None:
    if shutil.which("uv") is None:
        return "uv is not installed"
    if shutil.which("prometheus") is None:
        return "needs the Debian package prometheus (`./homelab test` installs it as root)"
    return unavailable()


pytestmark = [pytest.mark.skipif(_why_not() is not None, reason=str(_why_not())),
              pytest.mark.timeout(1200)]


@dataclass
class Live:
    root: Path
    ns: Netns
    done: set[str] = field(default_factory=set)

    def require(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.skip(f"needs the earlier step(s) {', '.join(missing)}")

    def homelab(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.ns.homelab(self.root, *args, timeout=timeout)

    def curl(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ns.run(["curl", "-sS", "--max-time", "30", *args, url], timeout=60)

    def key(self) -> str:
        return envfiles.read(self.root / "layer-gateway/litellm-orch/config/env.local")[
            "LITELLM_MASTER_KEY"]

    def prom(self, path: str) -> dict:
        out = self.curl(PROM + path)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}


def _copy_repo(dst: Path) -> None:
    listed = subprocess.run(["git", "-C", str(REAL_REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if (REAL_REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REAL_REPO / rel, dst / rel)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("observe") / "homelab-llm"
    _copy_repo(root)
    spec = root / "layer-gateway/litellm-orch/SERVICE_SPEC.md"  # one worker starts twice as fast
    spec.write_text(spec.read_text().replace(
        '{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "2"',
        '{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "1"'))
    ok(subprocess.run([*CLI, "--repo", str(root), "render"], capture_output=True, text=True,
                      env=_env()))
    # Environments are installed outside the namespace (it has no route to the package index).
    services = load_repo(root).services
    for name in ("ov-server", "litellm-orch"):
        ok(subprocess.run(["uv", "sync", "--frozen", "--quiet", "--project",
                           str(root / services[name].rel_dir)], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=900))
    ns = Netns.create("hlobs")
    made = Live(root, ns)
    try:
        yield made
    finally:
        made.homelab("down", timeout=300)
        ns.close()


def test_up_without_the_binary_says_how_to_install(live: Live) -> None:
    spec = live.root / SPEC
    text = spec.read_text()
    spec.write_text(text.replace("default: prometheus,", "default: prometheus-not-installed,"))
    try:
        out = live.homelab("up", "--only", "prometheus", timeout=300)
    finally:
        spec.write_text(text)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the prometheus binary is not installed" in out.stderr
    assert "sudo apt-get install prometheus" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not (live.root / ".homelab/prometheus/tsdb").exists()  # nothing was started
    live.done.add("no-binary")


def test_up_with_prometheus(live: Live) -> None:
    out = live.homelab("up", *(a for name in RUN for a in ("--only", name)), timeout=900)
    ok(out)
    for _ in range(3):  # a few real requests through the gateway
        answer = live.curl("http://127.0.0.1:4000/v1/chat/completions",
                           "-H", f"Authorization: Bearer {live.key()}",
                           "-H", "Content-Type: application/json", "-d",
                           json.dumps({"model": "jerry-tiny", "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "hello"}]}))
        assert json.loads(ok(answer))["object"] == "chat.completion", answer.stdout
    # And one streamed: time to first token is observed for streams only.
    streamed = live.curl("http://127.0.0.1:4000/v1/chat/completions",
                         "-H", f"Authorization: Bearer {live.key()}",
                         "-H", "Content-Type: application/json", "-d",
                         json.dumps({"model": "jerry-tiny", "max_tokens": 8, "stream": True,
                                     "messages": [{"role": "user", "content": "hello"}]}))
    assert "data: [DONE]" in ok(streamed), streamed.stdout
    live.done.add("up")


def test_prometheus_reports_the_mesh_targets_up(live: Live) -> None:
    live.require("up")
    deadline = time.monotonic() + 60
    while True:  # scrapes run every 5 s
        targets = live.prom("/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        # Until every job was scraped once (before that, the list may still be empty).
        if (set(health) == set(RUN) and all(h == "up" for h, _ in health.values())) \
                or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert health == {name: ("up", "") for name in RUN}
    # The gateway's key reached Prometheus only as a file in its state folder.
    key = live.key()
    keyfile = live.root / ".homelab/prometheus/keys/LITELLM_MASTER_KEY"
    assert keyfile.read_text() == key and (keyfile.stat().st_mode & 0o077) == 0
    rendered = live.root / "layer-observability/prometheus/config/prometheus.yml"
    assert key not in rendered.read_text()
    # It stores what it scrapes: the requests just made are in its time series.
    query = live.prom(f"/api/v1/query?query=sum({names.GATEWAY.requests})")["data"]["result"]
    assert query and float(query[0]["value"][1]) >= 3, query
    live.done.add("prometheus")


def test_every_dashboard_query_names_a_metric_the_services_export(live: Live) -> None:
    live.require("up")
    exported = {"up"}
    for name, auth in (("ov-server", None), ("litellm-orch", live.key())):
        svc = load_repo(live.root).services[name]
        assert svc.spec.metrics is not None
        headers = ["-H", f"Authorization: Bearer {auth}"] if auth else []
        body = ok(live.curl(f"http://127.0.0.1:{svc.spec.port}{svc.spec.metrics.path}", *headers))
        exported |= exposition.declared(body)
    queries = grafana.queries((live.root / "layer-observability/prometheus/"
                               "grafana/homelab-llm.json").read_text())
    assert metric_names(queries) - exported == set()
    assert {n for f in names.FAMILIES for n in f.all()} - exported == set()


def test_top_once_json_with_a_service_stopped(live: Live) -> None:
    live.require("up")
    ok(live.homelab("stop", "prometheus", timeout=120))
    out = live.homelab("top", "--once", "--json", timeout=120)
    view = json.loads(out.stdout)
    state = {s["service"]: s for s in view["services"]}
    assert state["prometheus"]["state"] == "down"
    assert state["ov-server"]["state"] == "up" and state["litellm-orch"]["state"] == "up"
    assert state["ov-server"]["metrics_error"] is None
    assert state["litellm-orch"]["metrics_error"] is None  # the key came from the env file
    assert state["litellm-orch"]["models"]["jerry-tiny"]["requests_total"] >= 3
    tiny = state["ov-server"]["models"]["jerry-tiny"]
    assert tiny["requests_total"] >= 3 and tiny["p50_s_all"] is not None
    assert tiny["loaded"] is True and tiny["waiting"] == 0
    # Only three services run here: the mesh's other required ones (web-fetch ...) are down.
    assert state["web-fetch"]["state"] == "down" and state["web-fetch"]["required"]
    assert out.returncode == 1 and "Traceback" not in out.stderr
    live.done.add("top")


def test_top_live_quits_on_ctrl_c_and_when_the_mesh_goes_down(live: Live) -> None:
    live.require("up")

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(live.ns.argv([*CLI, "--repo", str(live.root), "top",
                                              "--interval", "0.5"]),
                                cwd=live.root, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    quit_ = start()
    time.sleep(15)  # past its imports and first sweeps on a busy machine
    quit_.send_signal(signal.SIGINT)
    stdout, stderr = quit_.communicate(timeout=30)
    assert quit_.returncode == 0, stderr
    assert "ov-server" in stdout and "jerry-tiny" in stdout
    assert "Traceback" not in stderr

    watcher = start()
    time.sleep(15)
    ok(live.homelab("down", timeout=300))
    stdout, stderr = watcher.communicate(timeout=60)
    assert watcher.returncode == 1, stderr
    assert "the mesh went down" in stdout
    assert "Traceback" not in stderr
