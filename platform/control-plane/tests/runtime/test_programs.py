"""Which services `up` starts, and with what command."""

from __future__ import annotations

from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.runtime.hosts import local_host
from homelab.runtime.programs import command_for, directory_for, select

from .conftest import write_mesh

REAL_REPO = Path(__file__).resolve().parents[4]


def names(services: list) -> list[str]:
    return [s.name for s in services]


def test_real_mesh_start_order_backends_gateway_optimizer_tools() -> None:
    repo = load_repo(REAL_REPO)
    order = names(select(repo, "local"))
    at = order.index
    assert at("ov-server") < at("litellm-orch") < at("optillm-proxy")
    assert at("optillm-proxy") < at("mesh-status") < at("tiny-agents")
    assert at("optillm-proxy") < at("web-fetch") < at("tiny-agents")
    assert "open-webui" not in order  # opt-in
    assert names(select(repo, "local", with_=("open-webui",)))[-1] == "open-webui"
    assert "prometheus" not in order  # opt-in
    with_prom = names(select(repo, "local", with_=("prometheus",)))
    # `up --with prometheus`: the default mesh plus Prometheus, started after what it scrapes.
    assert with_prom == order + ["prometheus"]


def test_only_and_with(tmp_path: Path) -> None:
    repo = load_repo(write_mesh(tmp_path / "repo").root)
    assert names(select(repo, "local")) == ["fake-backend", "fake-gw"]
    only = select(repo, "local", only=("fake-gw", "fake-backend"))
    assert names(only) == ["fake-backend", "fake-gw"]
    with_ui = select(repo, "local", with_=("fake-ui",))
    assert names(with_ui) == ["fake-backend", "fake-gw", "fake-ui"]
    with pytest.raises(InputError, match="--with nope: no such service"):
        select(repo, "local", with_=("nope",))


def test_command_placeholders_and_service_relative_scripts() -> None:
    repo = load_repo(REAL_REPO)
    gw = repo.services["litellm-orch"]
    cmd = command_for(repo, gw)
    assert cmd[0] == str(REAL_REPO / "layer-gateway/litellm-orch/scripts/start.sh")
    assert cmd[1:] == ("--host", "0.0.0.0", "--port", "4000")
    assert directory_for(repo, gw) == REAL_REPO / "layer-gateway/litellm-orch"
    assert command_for(repo, repo.services["ov-server"])[:3] == ("uv", "run", "ov-server")


def test_local_host_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = load_repo(write_mesh(tmp_path / "repo").root)
    monkeypatch.delenv("HOMELAB_HOST", raising=False)
    assert local_host(repo) == "local"
    monkeypatch.setenv("HOMELAB_HOST", "elsewhere")
    with pytest.raises(InputError, match="unknown host 'elsewhere'"):
        local_host(repo)
