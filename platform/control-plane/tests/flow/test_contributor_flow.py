"""The contributor flow, exactly as a newcomer runs it, on a private copy of this repository:
scaffold each kind (a backend with a fallback and a gateway key, an MCP tool, a client, an
optimizer), `check`, `render`, run their own tests, bring them up with the real gateway, reach
them through their real clients (the official `openai` client through the gateway, the MCP SDK
client, tiny-agents listing the tool, the scaffolded client), stop a backend and watch its
fallback answer, add a tool and watch `up` restart the agent, then remove what was added.

Everything runs in a private network namespace, so the mesh keeps its real ports (4000, 4011 ...)
without meeting anyone else's. The steps share one mesh and run in file order; a step whose
prerequisite failed is skipped with the reason.
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
import yaml

from meshkit.testing import Netns, netns_unavailable
from meshkit.testing.netns import HOMELAB_CLI as CLI

REAL_REPO = Path(__file__).resolve().parents[4]
CLIENTS = Path(__file__).with_name("clients")
GATEWAY = "http://127.0.0.1:4000/v1"
# What this flow brings up (the rest of the mesh, e.g. ov-server's OpenVINO model, is not needed).
RUN = ["litellm-orch", "alpha", "beta", "thinker", "clock", "asker", "web-fetch", "mesh-status",
       "tiny-agents"]


def _why_not() -> str | None:
    if shutil.which("uv") is None:
        return "uv is not installed"
    return netns_unavailable()


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@dataclass
class Flow:
    root: Path
    ns: Netns
    done: set[str] = field(default_factory=set)
    key: str = ""

    def require(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.skip(f"needs the earlier step(s) {', '.join(missing)}")

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}

    def homelab(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """A static command (new, check, render, rm, test), as a newcomer types it."""
        return subprocess.run([*CLI, "--repo", str(self.root), *args], cwd=self.root,
                              env=self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def mesh(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """A runtime command (up, status, stop ...), inside the namespace."""
        return self.ns.homelab(self.root, *args, timeout=timeout)

    def in_env(self, project: str, *cmd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A command in a service's own uv environment, inside the namespace, with the mesh view
        set as its SERVICE_SPEC says to by hand (`homelab up` sets it for supervised services)."""
        env = {**self.env(), "HOMELAB_MESH_VIEW": str(self.root / "mesh/view.json")}
        return self.ns.run(["uv", "run", "--frozen", "--quiet", "--project", str(self.root / project),
                            *cmd], cwd=self.root, env=env, timeout=timeout)

    def chat(self, model: str, prompt: str = "hello") -> dict:
        out = self.in_env("layer-gateway/litellm-orch", "python", str(CLIENTS / "openai_chat.py"),
                          GATEWAY, self.key, model, prompt)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)

    def sync(self, *names: str) -> None:
        """Install the environments (what `up` does first), outside the namespace: it has no
        route to the package index, and installing is not what this flow tests."""
        from homelab.load.repo import load_repo

        services = load_repo(self.root).services
        for name in names:
            project = self.root / services[name].rel_dir
            ok(subprocess.run(["uv", "sync", "--frozen", "--quiet", "--project", str(project)],
                              cwd=self.root, env=self.env(), capture_output=True, text=True,
                              timeout=900))

    def status(self) -> dict[str, dict]:
        out = self.mesh("status", "--json", timeout=120)
        return {s["service"]: s for s in json.loads(out.stdout)["services"]}


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _copy_repo(dst: Path) -> None:
    listed = subprocess.run(["git", "-C", str(REAL_REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if (REAL_REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REAL_REPO / rel, dst / rel)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=maintainer", "-c",
                    "user.email=m@example.invalid", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    root = tmp_path_factory.mktemp("flow") / "homelab-llm"
    _copy_repo(root)
    # One LiteLLM worker starts in half the time of two on a loaded 2-core machine.
    spec = root / "layer-gateway/litellm-orch/SERVICE_SPEC.md"
    text = spec.read_text()
    spec.write_text(text.replace('{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "2"',
                                 '{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "1"'))
    subprocess.run([*CLI, "--repo", str(root), "render"], check=True, capture_output=True)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "the mesh as the newcomer cloned it")
    ns = Netns.create("hlflow", lan=True)  # as the flow was written: a LAN address beside loopback
    made = Flow(root, ns)
    try:
        yield made
    finally:
        made.mesh("down", timeout=300)
        ns.close()


def test_scaffold_each_kind(flow: Flow) -> None:
    ok(flow.homelab("new", "backend", "alpha", "-d", "Echo backend A (the fallback).",
                    "--model", "jerry-alpha=alpha-1"))
    ok(flow.homelab("new", "backend", "beta", "-d", "Echo backend B, falls back to A.",
                    "--model", "jerry-beta=beta-1", "--fallback", "jerry-alpha", "--gateway-auth"))
    ok(flow.homelab("new", "mcp-tool", "clock", "-d", "Tells the time.", "--tool", "get_time"))
    ok(flow.homelab("new", "optimizer", "thinker", "-d", "Thinks before answering.", "--approach", "cot"))
    ok(flow.homelab("new", "client", "asker", "-d", "Asks the gateway from the terminal."))
    ports = {p["service"]: p["port"]
             for p in yaml.safe_load((flow.root / "mesh/ports.yaml").read_text())["ports"]}
    assert (ports["alpha"], ports["beta"], ports["thinker"], ports["asker"], ports["clock"]) == \
        (4012, 4013, 4021, 4031, 4042)  # the ledger's 40x0 layout (4011: llamacpp-server)
    assert ok(flow.homelab("check")) == ""
    assert ok(flow.homelab("render")) == ""  # nothing left to render
    agent = yaml.safe_load((flow.root / "layer-orchestration/tiny-agents/SERVICE_SPEC.md")
                           .read_text().split("---")[1])
    assert "clock" in agent["upstreams"] and "clock" in agent["run"]["after"]
    flow.done.add("scaffold")


def test_their_own_tests_pass(flow: Flow) -> None:
    flow.require("scaffold")
    ok(flow.homelab("test", "alpha", "beta", "clock", "thinker", "asker", timeout=1800))  # exit 0


def test_check_live_runs_every_mcp_tool(flow: Flow) -> None:
    flow.require("scaffold")
    assert ok(flow.homelab("check", "--live", timeout=900)) == ""


@pytest.mark.timeout(900)  # `up` of nine services, each synced; minutes on a loaded machine
def test_bring_it_up(flow: Flow) -> None:
    flow.require("scaffold")
    flow.sync(*RUN)
    args = [a for name in RUN for a in ("--only", name)]
    out = ok(flow.mesh("up", *args, "--timeout", "600", timeout=3600))
    for name in ("alpha", "beta", "thinker", "clock", "asker", "litellm-orch"):
        assert f"{name}" in out and "healthy" in out
    secrets = (flow.root / ".homelab/secrets.env").read_text().splitlines()
    flow.key = next(l.split("=", 1)[1] for l in secrets if l.startswith("LITELLM_MASTER_KEY="))
    rows = flow.status()
    assert all(rows[n]["healthy"] for n in RUN if n != "tiny-agents"), rows
    flow.done.add("up")


def test_openai_client_through_the_gateway(flow: Flow) -> None:
    flow.require("up")
    beta = flow.chat("jerry-beta")
    assert beta["content"] == "beta (beta-1) echoes: hello" and beta["stream"] == beta["content"]
    assert {"jerry-alpha", "jerry-beta", "jerry-beta-cot", "jerry-tiny"} <= set(beta["models"])
    alias = flow.chat("jerry-beta-cot")  # gateway -> thinker -> gateway -> beta
    assert alias["content"] == "beta (beta-1) echoes: hello"


def test_mcp_sdk_client_over_both_transports(flow: Flow) -> None:
    flow.require("up")
    script = str(CLIENTS / "mcp_call.py")
    for target in (["http://127.0.0.1:4042/mcp"],
                   ["uv", "run", "--frozen", "--project", str(flow.root / "layer-tools/clock"),
                    "clock", "--transport", "stdio"]):
        out = json.loads(ok(flow.in_env("layer-tools/clock", "python", script, *target)))
        assert out == {"tools": ["get_time"], "result": {"text": "abab", "length": 4}, "error": False}


def test_tiny_agents_lists_the_tool(flow: Flow) -> None:
    flow.require("up")
    out = ok(flow.in_env("layer-orchestration/tiny-agents", "tiny-agents", "tools", "--transport",
                         "http", "--servers", "clock"))
    assert "get_time" in out
    health = flow.ns.run(["curl", "-s", "http://127.0.0.1:4030/health"]).stdout
    assert "get_time" in json.loads(health)["tools"]


def test_the_scaffolded_client_asks_through_the_gateway(flow: Flow) -> None:
    flow.require("up")
    out = flow.in_env("layer-orchestration/asker", "asker", "ask", "hi")
    assert out.returncode == 1 and "401" in out.stderr  # no key: the gateway says so
    env = {**flow.env(), "ASKER_API_KEY": flow.key}
    answer = flow.ns.run(["uv", "run", "--frozen", "--quiet", "--project",
                          str(flow.root / "layer-orchestration/asker"), "asker", "ask", "hi"],
                         env=env, timeout=300)
    assert ok(answer).strip() == "alpha (alpha-1) echoes: hi"  # its default: the first model
    served = flow.ns.run(["curl", "-s", "-d", '{"question": "yo"}', "http://127.0.0.1:4031/ask"]).stdout
    assert json.loads(served) == {"answer": "alpha (alpha-1) echoes: yo"}


def test_stop_a_backend_and_watch_its_fallback(flow: Flow) -> None:
    flow.require("up")
    assert "beta  stopped" in ok(flow.mesh("stop", "beta"))
    reply = flow.chat("jerry-beta")
    assert reply["content"] == "alpha (alpha-1) echoes: hello" and int(reply["fallbacks"]) >= 1
    models = {m["name"]: m for m in json.loads(flow.mesh("health", "--models", "--json").stdout)}
    assert models["jerry-beta"] == {"name": "jerry-beta", "state": "fallback",
                                    "path": "fallback jerry-alpha: alpha"}
    assert models["jerry-beta-cot"]["state"] == "up"  # thinker's call-back falls back too
    assert "fallback jerry-alpha" in models["jerry-beta-cot"]["path"]
    ok(flow.mesh("start", "beta"))
    # The gateway keeps a failed deployment in cooldown for router.yaml's cooldown_time (5 s), so
    # the fallback may still answer just after the start; then beta must answer again.
    deadline = time.monotonic() + 30
    while (content := flow.chat("jerry-beta")["content"]) != "beta (beta-1) echoes: hello":
        assert content == "alpha (alpha-1) echoes: hello", content
        assert time.monotonic() < deadline, "beta never answered again after its start"
        time.sleep(1)
    pid = flow.status()["beta"]["pid"]
    os.killpg(pid, signal.SIGKILL)  # a crash: supervisord restarts it within a second or so ...
    # ... so the client gets the fallback's answer or the restarted backend's, never an error.
    assert flow.chat("jerry-beta")["content"] in ("alpha (alpha-1) echoes: hello",
                                                  "beta (beta-1) echoes: hello")
    deadline = time.monotonic() + 120
    while not (row := flow.status()["beta"])["healthy"] or row["pid"] == pid:
        assert time.monotonic() < deadline, row
        time.sleep(1)


def test_a_new_tool_reaches_the_running_agent(flow: Flow) -> None:
    flow.require("up")
    ok(flow.homelab("new", "mcp-tool", "notes", "-d", "Searches notes.", "--tool", "search_notes"))
    assert ok(flow.homelab("check")) == ""
    flow.sync("notes")
    out = ok(flow.mesh("up", *[a for n in [*RUN, "notes"] for a in ("--only", n)], "--timeout",
                       "600", timeout=3600))
    assert "tiny-agents: restarting: changed since it started: " in out
    assert "layer-tools/registry.yaml" in out
    health = json.loads(flow.ns.run(["curl", "-s", "http://127.0.0.1:4030/health"]).stdout)
    assert {"get_time", "search_notes"} <= set(health["tools"])
    flow.done.add("notes")


def test_remove_what_was_added(flow: Flow) -> None:
    flow.require("up")
    for name in ("beta", "notes", "clock", "thinker", "asker", "alpha"):
        ok(flow.homelab("rm", name, "--yes"))
    assert ok(flow.homelab("check")) == ""
    ledger = yaml.safe_load((flow.root / "mesh/ports.yaml").read_text())["ports"]
    gone = [p for p in ledger if p["service"] in ("alpha", "beta", "clock", "thinker", "asker", "notes")]
    assert gone and all(p["status"] == "retired" for p in gone)  # retired, never freed
    out = ok(flow.mesh("up", "--only", "litellm-orch", "--timeout", "600", timeout=3600))
    assert "litellm-orch: restarting: changed since it started: " in out
    assert "config removed: " in out and "beta" in out
    listed = flow.ns.run(["curl", "-s", "-H", f"Authorization: Bearer {flow.key}",
                          f"{GATEWAY}/models"]).stdout
    names = {m["id"] for m in json.loads(listed)["data"]}
    assert "jerry-beta" not in names and "jerry-alpha" not in names and "jerry-tiny" in names
