"""secrets.env and each program's environment."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.runtime import envfiles, secrets
from homelab.runtime.environment import compose
from homelab.runtime.paths import RuntimePaths
from meshkit.testing import PrivateMesh, netns_unavailable

from .conftest import write_mesh

REAL_REPO = Path(__file__).resolve().parents[4]


def test_secrets_generated_once_private_and_shared_by_name(tmp_path: Path) -> None:
    repo = load_repo(write_mesh(tmp_path / "repo").root)
    paths = RuntimePaths(repo.root)
    paths.ensure()
    first = secrets.ensure(repo, paths)
    assert stat.S_IMODE(paths.secrets.stat().st_mode) == 0o600
    assert set(first) == {"FAKE_API_KEY", "GW_MASTER_KEY", "UI_API_KEY"}
    assert first["GW_MASTER_KEY"].startswith("sk-")  # the gateway's master key (LiteLLM rule)
    assert not first["FAKE_API_KEY"].startswith("sk-")
    # A UI calling the gateway gets the gateway's key, not a key nobody accepts.
    assert first["UI_API_KEY"] == first["GW_MASTER_KEY"]
    assert secrets.ensure(repo, paths) == first  # stable: never regenerated
    backend = compose(repo, paths, "fake-backend", first)
    gateway = compose(repo, paths, "fake-gw", first)
    assert backend["FAKE_API_KEY"] == gateway["FAKE_API_KEY"] == first["FAKE_API_KEY"]


def test_real_contracts_keys_follow_the_field_notes(tmp_path: Path) -> None:
    repo = load_repo(REAL_REPO)
    paths = RuntimePaths(tmp_path)  # state outside the checkout
    values = secrets.ensure(repo, paths)
    assert values["LITELLM_MASTER_KEY"].startswith("sk-")
    assert not values["OPTILLM_PROXY_KEY"].startswith("sk-")  # OptiLLM forwards sk- upstream
    assert values["TINYAGENTS_API_KEY"] == values["LITELLM_MASTER_KEY"]
    assert values["OPENAI_API_KEY"] == values["LITELLM_MASTER_KEY"]  # open-webui -> gateway
    assert len({values["OV_SERVER_API_KEY"], values["OPTILLM_PROXY_KEY"],
                values["LITELLM_MASTER_KEY"]}) == 3


def test_existing_env_file_value_is_adopted(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    env_local = mesh.root / "layer-gateway/fake-gw/config/env.local"
    env_local.parent.mkdir(parents=True)
    env_local.write_text("export GW_MASTER_KEY='sk-handmade'\n# comment\nFAKE_API_KEY=abc\n")
    repo = load_repo(mesh.root)
    paths = RuntimePaths(repo.root)
    values = secrets.ensure(repo, paths)
    assert values["GW_MASTER_KEY"] == "sk-handmade"
    assert values["FAKE_API_KEY"] == "abc"  # the backend gets what the gateway will send


def test_precedence_defaults_then_secrets_then_env_file(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    repo = load_repo(mesh.root)
    paths = RuntimePaths(repo.root)
    env = compose(repo, paths, "fake-backend", {"FAKE_API_KEY": "from-secrets"})
    assert env["FAKE_MODE"] == "tiny" and env["FAKE_API_KEY"] == "from-secrets"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    assert env["HOMELAB_MESH_VIEW"] == str(repo.root / "mesh" / "view.json")
    assert "HOMELAB_REPO" not in env
    env_local = mesh.root / "layer-gateway/fake-gw/config/env.local"
    env_local.parent.mkdir(parents=True)
    env_local.write_text("FAKE_API_KEY=from-file\n")
    assert compose(repo, paths, "fake-gw", {"FAKE_API_KEY": "x"})["FAKE_API_KEY"] == "from-file"


def test_up_value_overrides_the_default_with_placeholders(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    spec = mesh.root / "layer-inference/fake-backend/SERVICE_SPEC.md"
    spec.write_text(spec.read_text().replace('default: "tiny"}', 'default: "tiny", up_value: "{state}/m|{service_dir}"}'))
    repo = load_repo(mesh.root)
    env = compose(repo, RuntimePaths(repo.root), "fake-backend", {})
    assert env["FAKE_MODE"] == f"{repo.root}/.homelab/m|{repo.root}/layer-inference/fake-backend"
    spec.write_text(spec.read_text().replace("{name: FAKE_API_KEY, secret: true,",
                                             '{name: FAKE_API_KEY, secret: true, up_value: "x",'))
    with pytest.raises(InputError, match="must not carry a default or up_value"):
        load_repo(mesh.root)


def test_defaults_fill_the_contract_placeholders(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    spec = mesh.root / "layer-inference/fake-backend/SERVICE_SPEC.md"
    spec.write_text(spec.read_text().replace('default: "tiny"}', 'default: "http://{host_address}:{port}"}'))
    repo = load_repo(mesh.root)
    env = compose(repo, RuntimePaths(repo.root), "fake-backend", {})
    assert env["FAKE_MODE"] == f"http://127.0.0.1:{repo.services['fake-backend'].spec.port}"


def test_envfile_parse() -> None:
    text = 'A=1\n  export B = "two words"\n#C=3\nD=\'x=y\'\nE=\n'
    assert envfiles.parse(text) == {"A": "1", "B": "two words", "D": "x=y", "E": ""}
    assert envfiles.parse(envfiles.render({"K": "v"}, "hdr")) == {"K": "v"}


def test_malformed_env_file_is_an_input_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text("A=1\nbad line\n")
    with pytest.raises(InputError) as exc:
        envfiles.read(path)
    assert str(exc.value) == f"{path}:2: expected KEY=VALUE, got 'bad line'"


# What the control plane composes for ov-server, printed by a process that sees a private
# /etc/homelab-llm (so the answer cannot depend on this host's ov-server.env).
COMPOSE = """
import sys
from pathlib import Path
from homelab.load.repo import load_repo
from homelab.runtime.environment import compose
from homelab.runtime.paths import RuntimePaths
repo = load_repo(Path(sys.argv[1]))
print(compose(repo, RuntimePaths(repo.root), "ov-server", {})["OV_SERVER_MODEL_DIR"])
"""


@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
def test_ov_server_model_dir_points_into_state(tmp_path: Path) -> None:
    with PrivateMesh.create(tmp_path, repo=REAL_REPO, prefix="hl-env") as mesh:
        def model_dir() -> str:
            done = mesh.run([sys.executable, "-c", COMPOSE, str(mesh.root)], timeout=120)
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        assert model_dir() == str(mesh.root / ".homelab/models")
        # The machine's env file still wins over the up_value (what a person put there is kept).
        (mesh.etc / "ov-server.env").write_text("OV_SERVER_MODEL_DIR=/srv/models\n")
        assert model_dir() == "/srv/models"
