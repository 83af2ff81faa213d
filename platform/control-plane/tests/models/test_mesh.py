"""`homelab models add|rm` on a running mesh (ov-server + the LiteLLM gateway, real processes) in a
private network namespace (meshkit.testing.PrivateMesh): the file comes from the test's own HTTP
server, which cuts the first download mid-file; the new name answers through the gateway with the
official `openai` client while ov-server keeps running (same pid); after `rm` the name is a 4xx
and the other models still answer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from homelab.load.repo import load_repo
from meshkit.testing import PrivateMesh, netns_unavailable

from .fileserver import FileServer, Served

REAL_REPO = Path(__file__).resolve().parents[4]
CLIENTS = Path(__file__).resolve().parents[1] / "flow" / "clients"
OV = "layer-inference/ov-server"
GW = "layer-gateway/litellm-orch"


def _not_runnable() -> str | None:
    if shutil.which("uv") is None:
        return "uv is not installed"
    return netns_unavailable()


pytestmark = [pytest.mark.skipif(_not_runnable() is not None, reason=str(_not_runnable())),
              pytest.mark.timeout(1800)]


@dataclass
class Mesh:
    mesh: PrivateMesh
    gateway: str
    gguf: Path

    def homelab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.mesh.homelab(*args, timeout=900)

    def pids(self) -> dict[str, int]:
        rows = json.loads(self.homelab("status", "--json").stdout)["services"]
        return {r["service"]: r["pid"] for r in rows if r.get("pid")}

    def openai_chat(self, model: str) -> subprocess.CompletedProcess[str]:
        """The official openai client (the gateway's environment has it), inside the namespace."""
        key = self.mesh.secrets()["LITELLM_MASTER_KEY"]
        return self.mesh.run(["uv", "run", "--frozen", "--quiet", "--project", str(self.mesh.root / GW),
                              "python", str(CLIENTS / "openai_chat.py"), f"{self.gateway}/v1", key, model,
                              "hello"], timeout=300)

    def status_of(self, model: str) -> int:
        key = self.mesh.secrets()["LITELLM_MASTER_KEY"]
        with self.mesh.netns.entered():
            return httpx.post(f"{self.gateway}/v1/chat/completions", trust_env=False, timeout=120,
                              headers={"Authorization": f"Bearer {key}"},
                              json={"model": model, "max_tokens": 4,
                                    "messages": [{"role": "user", "content": "hi"}]}).status_code


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("models-mesh")
    private = PrivateMesh.create(work, repo=REAL_REPO, prefix="hl-models")
    try:
        private.presync([private.root / OV, private.root / GW])
        built = subprocess.run(["uv", "run", "--frozen", "--quiet", "--project", str(private.root / OV),
                                "ov-server", "build-tiny-model", str(work / "files")], env=private.env,
                               capture_output=True, text=True, timeout=600, cwd=private.root / OV)
        assert built.returncode == 0, built.stderr
        (private.root / GW / "config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        port = load_repo(private.root).services["litellm-orch"].spec.port
        real = Mesh(private, f"http://127.0.0.1:{port}", Path(built.stdout.strip().splitlines()[-1]))
        up = real.homelab("up", "--only", "ov-server", "--only", "litellm-orch", "--timeout", "600")
        assert up.returncode == 0, up.stdout + up.stderr
        yield real
        real.homelab("down")
    finally:
        private.close()


def test_add_from_a_cut_download_then_chat_then_rm(mesh: Mesh) -> None:
    blob = mesh.gguf.read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    served = Served({"/models/tiny.gguf": blob}, cut_after=64_000, cuts=1)
    before = mesh.pids()
    with mesh.mesh.netns.entered():  # the file server listens inside, where the command runs
        server = FileServer(served)
    with server:
        added = mesh.homelab("models", "add", "jerry-added", "--from", f"{server.base}/models/tiny.gguf",
                             "--sha256", sha)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "resuming at byte 64000" in added.stderr
    assert [r[2] for r in served.requests] == [None, "bytes=64000-"]
    assert "ov-server: jerry-added: ok" in added.stdout
    assert "jerry-added is served through the gateway" in added.stdout
    after = mesh.pids()
    assert after["ov-server"] == before["ov-server"]  # the engine hot-reloaded, never restarted
    assert after["litellm-orch"] != before["litellm-orch"]  # only the gateway restarted

    chat = mesh.openai_chat("jerry-added")
    assert chat.returncode == 0, chat.stderr
    reply = json.loads(chat.stdout)
    assert isinstance(reply["content"], str) and "jerry-added" in reply["models"]

    listed = {r["name"]: r for r in json.loads(mesh.homelab("models", "list", "--json").stdout)}
    assert listed["jerry-added"]["state"] == "ok" and listed["jerry-added"]["size"] == len(blob)
    assert listed["jerry-tiny"]["state"] == "ok"

    removed = mesh.homelab("models", "rm", "jerry-added")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert 400 <= mesh.status_of("jerry-added") < 500
    assert mesh.status_of("jerry-tiny") == 200
    assert mesh.pids()["ov-server"] == before["ov-server"]
    assert "jerry-added" not in {r["name"] for r in json.loads(mesh.homelab("models", "list", "--json").stdout)}
    # The contract, routes, docs and view are as before the add (ignored runtime state aside).
    assert subprocess.run(["git", "-C", str(mesh.mesh.root), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout == ""
