"""Both engines in a real mesh: the control plane's `homelab up` in a private mesh (a clone of
this checkout in its own network namespace, on the contract ports: meshkit.testing.PrivateMesh)
runs ov-server, the LiteLLM gateway and this service; the official openai client asks the
gateway. jerry-chat (ov-server) and jerry-chat-lcpp (llama-server) fall back to each other
(contract `fallbacks`, rendered into router.yaml):

- opt-in absent: the ordinary `up` builds and starts nothing of llama.cpp, the gateway serves,
  and jerry-chat-lcpp is answered by its fallback;
- `up` with it: the real model answers on both names;
- one engine killed: its name is answered by the other engine through the gateway;
- a native crash that keeps happening: `homelab status` and `logs` name the signal.

Runs where the real-binary tests run (llama-server built, or HOMELAB_TEST_LLAMACPP=1) and a
network namespace can be made (root).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from conftest import REPO, contract

from llamacpp_server import build
from meshkit.testing import PrivateMesh, netns_unavailable, processes_with_env, wait_until

pytestmark = pytest.mark.timeout(1800)  # `up` of three real services, minutes on a loaded machine

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ENGINES = ("ov-server", "litellm-orch")
GATEWAY = f"http://127.0.0.1:{contract('litellm-orch')['port']}"


class Mesh:
    def __init__(self, private: PrivateMesh, binary: Path) -> None:
        self.private = private
        self.binary = binary.resolve()

    def homelab(self, *args: str) -> tuple[int, str]:
        done = self.private.homelab(*args, timeout=1800)
        return done.returncode, done.stdout + done.stderr

    def up(self, *names: str) -> str:
        code, out = self.homelab("up", *[a for n in names for a in ("--only", n)], "--timeout", "600")
        assert code == 0, f"homelab up failed:\n{out[-4000:]}"
        return out

    def status(self) -> dict[str, dict]:
        code, out = self.homelab("status", "--json")
        return {s["service"]: s for s in json.loads(out[out.index("{"):])["services"]}

    def ask(self, model: str) -> tuple[str, int]:
        """(answer, fallbacks the gateway tried) for the fact question, greedy."""
        key = self.private.secrets()["LITELLM_MASTER_KEY"]
        with self.private.netns.entered():
            client = openai.OpenAI(base_url=GATEWAY + "/v1", api_key=key, max_retries=0, timeout=120,
                                   http_client=httpx.Client(trust_env=False))
            raw = client.chat.completions.with_raw_response.create(model=model, messages=QUESTION,
                                                                   temperature=0, max_tokens=24)
        reply = raw.parse()
        return reply.choices[0].message.content, int(raw.headers.get("x-litellm-attempted-fallbacks") or 0)

    def llama_pids(self) -> list[int]:
        """The llama-server processes this clone's supervisord runs (exec'd by `serve`): under
        `up` that is the router (LLAMACPP_SERVER_PRESETS); its per-model children, llama-servers
        too, are left out."""
        mine = set()
        for pid in processes_with_env("HOMELAB_SUPERVISED", str(self.private.root)):
            try:
                if Path(f"/proc/{pid}/exe").resolve() == self.binary:
                    mine.add(pid)
            except OSError:
                pass
        return sorted(pid for pid in mine if _parent(pid) not in mine)


def _parent(pid: int) -> int | None:
    try:  # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ")"
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture(scope="module")
def mesh(llama_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    why_not = netns_unavailable()
    if why_not:
        pytest.skip(why_not)
    private = PrivateMesh.create(tmp_path_factory.mktemp("private"), repo=REPO, prefix="hl-lcpp")
    # The clone has a private HOME: point `prepare` and `serve` at this machine's build cache.
    private.env["LLAMACPP_SERVER_CACHE"] = str(build.cache_root())
    try:
        private.presync([private.root, *(private.root / p for p in (
            "layer-inference/ov-server", "layer-gateway/litellm-orch", "layer-inference/llamacpp-server"))])
        (private.root / "layer-gateway/litellm-orch/config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        yield Mesh(private, llama_binary)
    finally:
        private.homelab("down", timeout=300)
        print(f"\nllamacpp-server log tail:\n{private.log('llamacpp-server')[-2000:]}")
        private.close()


def test_ordinary_up_without_the_opt_in_engine(mesh: Mesh) -> None:
    out = mesh.up(*ENGINES)
    assert "llamacpp-server" not in out  # nothing of it is prepared (built) or started
    rows = mesh.status()
    assert rows["llamacpp-server"]["state"] != "RUNNING" and rows["llamacpp-server"]["autostart"] is False
    assert rows["ov-server"]["healthy"] and rows["litellm-orch"]["healthy"]
    answer, tried = mesh.ask("jerry-chat")
    assert "Paris" in answer and tried == 0
    # The fallback to a service that is not up does not break the gateway: the other way round
    # works too, and jerry-chat-lcpp's requests go to jerry-chat.
    answer, tried = mesh.ask("jerry-chat-lcpp")
    assert "Paris" in answer and tried == 1
    code, out = mesh.homelab("health", "--json")
    probes = {r["service"]: r for r in json.loads(out[out.index("["):])}
    # Down, and not required (contract health.required: false): `health` does not fail on it.
    assert probes["llamacpp-server"]["ok"] is False and probes["llamacpp-server"]["required"] is False
    code, out = mesh.homelab("health", "--models", "--json")
    models = {m["name"]: m for m in json.loads(out[out.index("["):])}
    assert models["jerry-chat"]["state"] == "up"
    assert models["jerry-chat-lcpp"]["state"] == "fallback", models["jerry-chat-lcpp"]


def test_up_with_it_serves_the_real_model_on_both_engines(mesh: Mesh) -> None:
    out = mesh.up(*ENGINES, "llamacpp-server")
    assert re.search(r"prepare\s+llamacpp-server.*\(\d+\.\d s\)", out), out[-3000:]
    assert mesh.status()["llamacpp-server"]["healthy"] is True
    assert len(mesh.llama_pids()) == 1  # exec'd: the supervised process is llama-server itself
    for model in ("jerry-chat-lcpp", "jerry-chat"):
        answer, tried = mesh.ask(model)
        assert "Paris" in answer and tried == 0, (model, answer)


def test_killed_llama_server_jerry_chat_lcpp_answers_from_ov_server(mesh: Mesh) -> None:
    (pid,) = mesh.llama_pids()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in mesh.llama_pids(), "llama-server gone")
    answer, tried = mesh.ask("jerry-chat-lcpp")
    assert "Paris" in answer and tried == 1
    # supervisord restarts it; then it answers itself again (after the gateway's 5 s cooldown).
    wait_until(lambda: mesh.status()["llamacpp-server"]["healthy"] is True, "llamacpp-server back", timeout=120)
    time.sleep(6)
    answer, tried = mesh.ask("jerry-chat-lcpp")
    assert "Paris" in answer and tried == 0


def test_killed_ov_server_jerry_chat_answers_from_llama_server(mesh: Mesh) -> None:
    pid = mesh.status()["ov-server"]["pid"]
    os.killpg(pid, signal.SIGKILL)  # uv run + the HTTP process + its engine processes
    answer, tried = mesh.ask("jerry-chat")
    assert "Paris" in answer and tried == 1
    wait_until(lambda: mesh.status()["ov-server"]["healthy"] is True, "ov-server back", timeout=300)


def test_a_native_crash_shows_its_signal_in_status_and_logs(mesh: Mesh) -> None:
    """llama-server segfaulting at every start: supervisord gives up, and `status` and `logs`
    say SIGSEGV (through `uv run`: exit 139), like any other service's native crash."""
    killed: set[int] = set()

    def crash_until_fatal() -> bool:
        for pid in mesh.llama_pids():
            if pid not in killed:
                os.kill(pid, signal.SIGSEGV)
                killed.add(pid)
        return mesh.status()["llamacpp-server"]["state"] == "FATAL"

    wait_until(crash_until_fatal, "supervisord to give up on llamacpp-server", timeout=300, interval=0.05)
    row = mesh.status()["llamacpp-server"]
    assert "SIGSEGV (signal 11)" in row["problem"] and "gave up" in row["problem"], row
    assert "segmentation fault" in row["hint"]
    code, out = mesh.homelab("logs", "llamacpp-server")
    assert "SIGSEGV" in out, out[-2000:]
    answer, tried = mesh.ask("jerry-chat-lcpp")  # the gateway still answers it, from ov-server
    assert "Paris" in answer and tried == 1
