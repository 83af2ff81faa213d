"""The contract side of `homelab models` on the synthetic mesh (pure, fast): the edit renders a
mesh that passes `check`, only the gateway's inputs change, and what `rm` refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.models import contract, lifecycle
from homelab.models.engines import LlamaServer, Site
from homelab.runtime.environment import compose
from homelab.runtime.inputs import inputs
from homelab.runtime.paths import RuntimePaths

from conftest import violations

SPEC = "layer-inference/ov/SERVICE_SPEC.md"
REAL_REPO = Path(__file__).resolve().parents[4]


def _digests(root: Path) -> dict[str, dict[str, str]]:
    repo = load_repo(root)
    return {n: inputs(repo, repo.services[n], compose(repo, RuntimePaths(root), n, {}))
            for n in ("ov", "gw")}


def test_add_then_remove_renders_a_clean_mesh_and_changes_only_the_gateways_inputs(mesh: Path) -> None:
    before = _digests(mesh)
    original = (mesh / SPEC).read_text()
    repo = load_repo(mesh)
    files = contract.plan_add(repo, repo.services["ov"], "jerry-extra")
    contract.write(mesh, files)
    text = (mesh / SPEC).read_text()
    assert "{name: jerry-extra, upstream_id: jerry-extra}" in text
    assert text.replace(text.split("\n---\n", 1)[0], "") == original.replace(original.split("\n---\n", 1)[0], "")
    assert "jerry-extra" in (mesh / "layer-gateway/gw/config/router.yaml").read_text()
    assert violations(mesh, history=False) == []
    after = _digests(mesh)
    assert after["ov"] == before["ov"]  # the backend keeps running: its models are not its input
    assert after["gw"] != before["gw"]  # the gateway restarts: its router.yaml changed

    contract.write(mesh, contract.plan_remove(load_repo(mesh), "jerry-extra", drop_fallbacks=False))
    assert (mesh / SPEC).read_text() == original
    assert _digests(mesh) == before


def test_rm_refuses_what_would_break(mesh: Path) -> None:
    repo = load_repo(mesh)
    problems = lifecycle.blockers(repo, "jerry-small", force=True)
    assert any("only model of ov" in p for p in problems)
    assert any(p.startswith("optimizer opt has aliases of jerry-small") for p in problems)
    with pytest.raises(InputError, match="no backend serves it"):
        lifecycle.remove(repo, "jerry-nope", force=False)


def test_a_backend_without_a_known_engine_is_refused(mesh: Path) -> None:
    with pytest.raises(InputError, match="--backend ov: no engine adapter knows how it reads models"):
        lifecycle.choose_backend(load_repo(mesh), "ov")
    with pytest.raises(InputError, match="--backend: name the backend .*: none"):
        lifecycle.choose_backend(load_repo(mesh), None)


def test_the_default_backend_is_the_engine_a_plain_up_starts() -> None:
    """The real mesh has two engines; llamacpp-server is opt-in (`up --with`), so a bare
    `models add` goes to ov-server and llamacpp-server is chosen only by name."""
    repo = load_repo(REAL_REPO)
    assert lifecycle.choose_backend(repo, None).service.name == "ov-server"
    target = lifecycle.choose_backend(repo, "llamacpp-server")
    assert isinstance(target.engine, LlamaServer)


def test_llama_server_presets_are_edited_atomically_and_the_router_is_asked_to_reload(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The INI edit (pure); the running router is a recorded double here (test_models_lifecycle.py
    in layer-inference/llamacpp-server runs the real one)."""
    repo = load_repo(REAL_REPO)
    ini = tmp_path / "models.ini"
    ini.write_text("version = 1\n[*]\nc = 4096\n[jerry-chat-lcpp]\nmodel = /m/smol.gguf\nload-on-startup = true\n")
    model = tmp_path / "added" / "jerry-x.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF" + bytes(60))
    site = Site(repo, repo.services["llamacpp-server"], {"LLAMACPP_SERVER_PRESETS": str(ini)})
    calls: list[tuple[str, str, object]] = []
    monkeypatch.setattr(LlamaServer, "_call", lambda self, s, method, path, body=None: calls.append((method, path, body)))
    engine = LlamaServer()
    engine.register(site, "jerry-x", model)
    entries = engine.entries(site)
    assert list(entries) == ["jerry-chat-lcpp", "jerry-x"]  # `[*]` is options, not a model
    assert entries["jerry-x"].file == str(model.resolve()) and entries["jerry-x"].size == 64
    assert "[jerry-chat-lcpp]\nmodel = /m/smol.gguf" in ini.read_text() and "c = 4096" in ini.read_text()
    assert not list(tmp_path.glob(".models.ini.*"))  # no temp file left behind
    assert engine.unregister(site, "jerry-x") == str(model.resolve())
    assert "jerry-x" not in engine.entries(site) and engine.unregister(site, "jerry-x") is None
    assert [c[:2] for c in calls] == [("GET", "/models?reload=1"), ("GET", "/models?reload=1")]  # not running: no load


def test_llama_server_without_presets_says_which_variable(tmp_path: Path) -> None:
    repo = load_repo(REAL_REPO)
    site = Site(repo, repo.services["llamacpp-server"], {})
    with pytest.raises(InputError, match="no LLAMACPP_SERVER_PRESETS here"):
        LlamaServer().entries(site)


def test_llama_server_refusing_the_key_is_said_not_taken_for_unloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A router started with another key than this checkout's answers /models 401 (what llama-server
    does; the router is a double here)."""
    import httpx

    repo = load_repo(REAL_REPO)
    site = Site(repo, repo.services["llamacpp-server"], {"LLAMACPP_SERVER_PRESETS": str(tmp_path / "m.ini")})
    monkeypatch.setattr(LlamaServer, "_call", lambda self, s, method, path, body=None: httpx.Response(
        401, json={"error": {"message": "Invalid API Key", "code": 401}}))
    live = LlamaServer().live(site)
    assert live is not None and live["jerry-chat-lcpp"].startswith("failed to ask the router: key refused (401)")
