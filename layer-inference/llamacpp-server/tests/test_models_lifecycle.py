"""`homelab models add|list|rm --backend llamacpp-server` on a running mesh (llama-server's router
+ the LiteLLM gateway, real processes) in a private network namespace:

- a file llama-server cannot load is refused before anything is registered (llama.cpp's reason);
- a copy of the SmolLM2 GGUF under a new name: loaded by the running router (same process, no
  restart), served through the gateway to the official openai client, listed as loaded;
- `rm`: the name is a 4xx at the gateway, jerry-chat-lcpp still answers, the checkout is as before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from conftest import REPO, contract

from llamacpp_server import build
from llamacpp_server.model import builtin_model_path
from meshkit.testing import PrivateMesh, netns_unavailable

pytestmark = pytest.mark.timeout(1800)

GATEWAY = f"http://127.0.0.1:{contract('litellm-orch')['port']}"
NAME = "jerry-lcpp-copy"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class Mesh:
    def __init__(self, private: PrivateMesh, files: Path) -> None:
        self.private = private
        self.files = files

    def homelab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.private.homelab(*args, timeout=900)

    def pids(self) -> dict[str, int]:
        out = self.homelab("status", "--json").stdout
        return {r["service"]: r["pid"] for r in json.loads(out[out.index("{"):])["services"] if r.get("pid")}

    def listed(self) -> dict[str, dict]:
        out = self.homelab("models", "list", "--json").stdout
        return {r["name"]: r for r in json.loads(out[out.index("["):])}

    def ask(self, model: str) -> str:
        key = self.private.secrets()["LITELLM_MASTER_KEY"]
        with self.private.netns.entered():
            client = openai.OpenAI(base_url=GATEWAY + "/v1", api_key=key, max_retries=0, timeout=120,
                                   http_client=httpx.Client(trust_env=False))
            reply = client.chat.completions.create(model=model, messages=QUESTION, temperature=0, max_tokens=24)
        return reply.choices[0].message.content or ""

    def status_of(self, model: str) -> int:
        key = self.private.secrets()["LITELLM_MASTER_KEY"]
        with self.private.netns.entered():
            return httpx.post(f"{GATEWAY}/v1/chat/completions", trust_env=False, timeout=120,
                              headers={"Authorization": f"Bearer {key}"},
                              json={"model": model, "max_tokens": 4,
                                    "messages": [{"role": "user", "content": "hi"}]}).status_code

    def clean(self) -> str:
        return subprocess.run(["git", "-C", str(self.private.root), "status", "--porcelain"],
                              capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def mesh(llama_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    why_not = netns_unavailable()
    if why_not:
        pytest.skip(why_not)
    work = tmp_path_factory.mktemp("models")
    files = work / "files"
    files.mkdir()
    shutil.copyfile(builtin_model_path(), files / "copy.gguf")
    (files / "cut.gguf").write_bytes(builtin_model_path().read_bytes()[:100_000])  # a GGUF cut short
    private = PrivateMesh.create(work / "private", repo=REPO, prefix="hl-lcppm")
    private.env["LLAMACPP_SERVER_CACHE"] = str(build.cache_root())  # the clone's HOME is private
    try:
        private.presync([private.root, *(private.root / p for p in (
            "layer-gateway/litellm-orch", "layer-inference/llamacpp-server"))])
        (private.root / "layer-gateway/litellm-orch/config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        real = Mesh(private, files)
        up = real.homelab("up", "--only", "llamacpp-server", "--only", "litellm-orch", "--timeout", "600")
        assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
        yield real
    finally:
        private.homelab("down", timeout=300)
        print(f"\nllamacpp-server log tail:\n{private.log('llamacpp-server')[-2000:]}")
        private.close()


def test_a_file_llama_server_cannot_load_is_refused_and_nothing_changes(mesh: Mesh) -> None:
    presets = sorted(mesh.private.root.rglob("llamacpp-models.ini"))
    before = [p.read_text() for p in presets]
    done = mesh.homelab("models", "add", "jerry-cut", "--from", str(mesh.files / "cut.gguf"),
                        "--backend", "llamacpp-server")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cut.gguf" in done.stderr and "cannot load it" in done.stderr, done.stderr
    assert "gguf_init_from_reader" in done.stderr, done.stderr  # llama.cpp's own reason
    assert [p.read_text() for p in presets] == before
    assert not list(mesh.private.root.rglob("jerry-cut.gguf"))
    assert mesh.clean() == ""


def test_add_then_chat_through_the_gateway_then_rm(mesh: Mesh) -> None:
    size = (mesh.files / "copy.gguf").stat().st_size
    before = mesh.pids()
    added = mesh.homelab("models", "add", NAME, "--from", str(mesh.files / "copy.gguf"),
                         "--backend", "llamacpp-server")
    assert added.returncode == 0, added.stdout + added.stderr
    assert f"llamacpp-server: {NAME}: ok" in added.stdout, added.stdout
    after = mesh.pids()
    assert after["llamacpp-server"] == before["llamacpp-server"]  # the router re-read its presets
    assert after["litellm-orch"] != before["litellm-orch"]  # only the gateway restarted

    assert "Paris" in mesh.ask(NAME)
    listed = mesh.listed()
    assert listed[NAME]["state"] == "ok" and listed[NAME]["size"] == size, listed[NAME]
    assert listed[NAME]["backend"] == "llamacpp-server" and listed[NAME]["file"].endswith(f"{NAME}.gguf")
    assert listed["jerry-chat-lcpp"]["state"] == "ok", listed["jerry-chat-lcpp"]

    removed = mesh.homelab("models", "rm", NAME)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert 400 <= mesh.status_of(NAME) < 500
    assert "Paris" in mesh.ask("jerry-chat-lcpp")
    assert mesh.pids()["llamacpp-server"] == before["llamacpp-server"]
    assert NAME not in mesh.listed()
    assert not list(mesh.private.root.rglob(f"{NAME}.gguf"))  # the landed file is deleted
    assert mesh.clean() == ""  # contract, routes, docs and view as before (runtime state is ignored)
