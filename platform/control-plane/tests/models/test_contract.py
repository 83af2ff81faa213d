"""The contract side of `homelab models` on the synthetic mesh (pure, fast): the edit renders a
mesh that passes `check`, only the gateway's inputs change, and what `rm` refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.models import contract, lifecycle
from homelab.runtime.environment import compose
from homelab.runtime.inputs import inputs
from homelab.runtime.paths import RuntimePaths

from conftest import violations

SPEC = "layer-inference/ov/SERVICE_SPEC.md"


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
