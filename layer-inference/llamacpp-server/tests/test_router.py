"""The real llama-server in router mode (LLAMACPP_SERVER_PRESETS), started as the contract starts it:
the built-in model from the presets file `serve` writes; a section added to the file is served
after `GET /models?reload=1` without a restart, and a removed one is a 400. Plus `check-model`
on a good and a cut GGUF (the load check `homelab models add` runs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from conftest import KEY, Server, start

from llamacpp_server import presets
from llamacpp_server.model import builtin_model_path
from llamacpp_server.settings import UPSTREAM_ID

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def router(llama_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("router")
    ini = tmp / "models.ini"
    srv = start(tmp, {"LLAMACPP_SERVER_PRESETS": str(ini)})
    yield srv, ini
    srv.stop()


def ask(server: Server, model: str) -> str:
    client = openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, max_retries=0, timeout=120,
                           http_client=httpx.Client(trust_env=False))
    reply = client.chat.completions.create(model=model, messages=QUESTION, temperature=0, max_tokens=24)
    return reply.choices[0].message.content or ""


def states(server: Server, reload: bool = False) -> dict[str, str]:
    url = server.base + "/models" + ("?reload=1" if reload else "")
    body = httpx.get(url, headers=AUTH, timeout=30, trust_env=False).json()
    return {m["id"]: m["status"]["value"] for m in body["data"]}


def test_serve_writes_the_presets_and_the_builtin_answers(router: tuple[Server, Path]) -> None:
    server, ini = router
    assert list(presets.read(ini)) == [UPSTREAM_ID]
    assert "router over" in server.text()
    assert "Paris" in ask(server, UPSTREAM_ID)
    assert states(server)[UPSTREAM_ID] == "loaded"


def test_a_section_added_then_removed_without_a_restart(router: tuple[Server, Path], tmp_path: Path) -> None:
    server, ini = router
    pid = server.proc.pid
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(builtin_model_path(), copy)
    sections = presets.read(ini)
    presets.write_atomic(ini, presets.render({**sections, "jerry-copy": presets.entry(copy)}))
    assert states(server, reload=True)["jerry-copy"] in ("unloaded", "loading", "loaded")
    assert "Paris" in ask(server, "jerry-copy")  # loaded on its first request
    presets.write_atomic(ini, presets.render(sections))
    assert "jerry-copy" not in states(server, reload=True)
    resp = httpx.post(server.base + "/v1/chat/completions", headers=AUTH, timeout=60, trust_env=False,
                      json={"model": "jerry-copy", "messages": QUESTION, "max_tokens": 4})
    assert resp.status_code == 400 and "not found" in resp.text
    assert "Paris" in ask(server, UPSTREAM_ID)
    assert server.proc.pid == pid and server.proc.poll() is None


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamacpp_server", "check-model", str(path), "--timeout", "60"],
                          capture_output=True, text=True, timeout=120)


def test_check_model_accepts_a_real_gguf(llama_binary: Path) -> None:
    done = _check(builtin_model_path())
    assert done.returncode == 0 and "loads in llama-server" in done.stdout, done.stderr


def test_check_model_refuses_a_cut_gguf_with_llama_cpps_reason(llama_binary: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(builtin_model_path().read_bytes()[:100_000])
    done = _check(cut)
    assert done.returncode == 1
    assert f"cannot load {cut}" in done.stderr and "gguf_init_from_reader" in done.stderr, done.stderr
