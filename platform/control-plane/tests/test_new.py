"""`homelab new`: the contributor guide as one command; the result passes `check` at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import git, violations
from test_bad_input import run_cli


def test_new_backend_shows_up_everywhere(mesh: Path) -> None:
    code, out, err = run_cli(mesh, "new", "backend", "demo", "--model", "jerry-demo=demo-7b",
                             "-d", "Demo box")
    assert code == 0, out + err
    assert violations(mesh) == []
    assert (mesh / "layer-inference/demo/SERVICE_SPEC.md").is_file()
    for f in ("ARCHITECTURE.md", "AGENTS.md", "pyproject.toml", "uv.lock"):
        assert (mesh / "layer-inference/demo" / f).read_text().strip()
    router = yaml.safe_load((mesh / "layer-gateway/gw/config/router.yaml").read_text())
    entry = next(m for m in router["model_list"] if m["model_name"] == "jerry-demo")
    assert entry["litellm_params"]["model"] == "openai/demo-7b"
    assert '"demo|box|' in (mesh / "platform/ops/scripts/healthcheck.sh").read_text()
    assert "homelab-demo.service" in (mesh / "platform/ops/scripts/restart-all.sh").read_text()
    assert (mesh / "platform/ops/systemd/homelab-demo.service").is_file()
    assert "| demo |" in (mesh / "docs/foundation/topology.md").read_text()
    assert "[demo]" in (mesh / "docs/PLATFORM_DOSSIER.md").read_text()
    ledger = yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]
    mine = [p for p in ledger if p["service"] == "demo"]
    assert len(mine) == 1 and mine[0]["port"] not in {p["port"] for p in ledger if p["service"] != "demo"}
    assert violations(mesh, base="HEAD") == []  # appending to the ledger is fine in review


def test_new_port_skips_retired_and_used(mesh: Path) -> None:
    used = {p["port"] for p in yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]}
    assert 4009 in used  # retired in the fixture
    run_cli(mesh, "new", "mcp-tool", "notes", "--tool", "search_notes")
    ledger = yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]
    port = next(p["port"] for p in ledger if p["service"] == "notes")
    assert port not in used and port == min(set(range(4000, 5000)) - used)
    assert violations(mesh) == []


@pytest.mark.parametrize("kind", ["client", "optimizer", "mcp-tool"])
def test_every_kind_passes_check(mesh: Path, kind: str) -> None:
    extra = ["--approach", "bon"] if kind == "optimizer" else []  # moa is served by the fixture's
    code, out, err = run_cli(mesh, "new", kind, f"x-{kind.replace('-', '')}", *extra)
    assert code == 0, out + err
    assert violations(mesh) == []


def test_lan_backend_refused_without_approval(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "new", "backend", "lanbox", "--bind", "0.0.0.0")
    assert code == 2 and "--bind: binding 0.0.0.0 exposes lanbox on the LAN" in err
    assert git(mesh, "status", "--porcelain") == ""


def test_lan_backend_with_recorded_approval(mesh: Path) -> None:
    code, out, err = run_cli(mesh, "new", "backend", "lanbox", "--bind", "0.0.0.0", "--approved-by",
                             "alice", "--reason", "GPU box serves the LAN")
    assert code == 0, out + err
    approvals = yaml.safe_load((mesh / "mesh/approvals.yaml").read_text())["approvals"]
    assert approvals[-1]["id"] == "LAN-0002" and approvals[-1]["service"] == "lanbox"
    assert violations(mesh) == []


def test_optimizer_can_never_be_lan(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "new", "optimizer", "opt2", "--bind", "0.0.0.0", "--approved-by", "a",
                           "--reason", "b")
    assert code == 2 and "an optimizer binds loopback only" in err
    assert git(mesh, "status", "--porcelain") == ""


@pytest.mark.parametrize(("args", "message"), [
    (["backend", "Bad_Name"], "NAME: lowercase letters"),
    (["backend", "ov"], "NAME: a service named ov exists"),
    (["backend", "b2", "--model", "nope"], "--model: expected PUBLIC=UPSTREAM_ID"),
    (["backend", "b2", "--model", "gpt4=x"], "--model: public name 'gpt4' does not match"),
    (["backend", "b2", "--model", "jerry-small=x"], "--model: public name 'jerry-small' is already served"),
    (["optimizer", "o2", "--approach", "moa"], "--approach: public name 'jerry-small-moa' is already served"),
    (["backend", "b2", "--port", "4000"], "--port: box:4000 is already in the ledger"),
    (["backend", "b2", "--port", "4009"], "--port: box:4009 is already in the ledger"),
    (["backend", "b2", "--host", "mars"], "--host: unknown host 'mars'"),
    (["backend", "b2", "--approval", "LAN-0001", "--bind", "0.0.0.0"], "--approval: LAN-0001 is not an approval for b2"),
])
def test_bad_arguments_name_the_parameter(mesh: Path, args: list[str], message: str) -> None:
    code, out, err = run_cli(mesh, "new", *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert git(mesh, "status", "--porcelain") == ""


def test_new_backend_on_a_copy_of_this_repository(tmp_path: Path) -> None:
    """The issue's done-criterion, on the real mesh rather than the synthetic one."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    copy = tmp_path / "repo"
    for rel in filter(None, listed.decode().split("\0")):
        if (repo / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, copy / rel)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    code, out, err = run_cli(copy, "new", "backend", "demo", "--model", "jerry-demo=demo-1b")
    assert code == 0, out + err
    assert violations(copy) == []
    router = yaml.safe_load((copy / "layer-gateway/litellm-orch/config/router.yaml").read_text())
    assert "jerry-demo" in [m["model_name"] for m in router["model_list"]]
    assert '"demo|local|' in (copy / "platform/ops/scripts/healthcheck.sh").read_text()
    assert "homelab-demo.service" in (copy / "platform/ops/scripts/restart-all.sh").read_text()
    assert (copy / "platform/ops/systemd/homelab-demo.service").is_file()
    assert "| demo |" in (copy / "docs/foundation/topology.md").read_text()
    assert "[demo]" in (copy / "docs/PLATFORM_DOSSIER.md").read_text()
