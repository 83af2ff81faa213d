"""Unusable input: one clear message with file and line, exit 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import edit, git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homelab.cli import _register, cli
from homelab.errors import InputError
from homelab.load.repo import load_repo, parse_service

OV = "layer-inference/ov/SERVICE_SPEC.md"


def run_cli(root: Path, *args: str) -> tuple[int, str, str]:
    _register()
    result = CliRunner().invoke(cli, ["--repo", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", [("check",), ("render",), ("check", "--json")])
@pytest.mark.parametrize(("old", "new", "expected"), [
    ("port: 40", "port: [40", f"{OV}:9: invalid YAML: did not find expected ',' or ']'"),
    ("exposure: localhost", "exposure: localhost\nexposre: lan", f"{OV}:10: exposre: unknown field"),
    ("exposure: localhost", "exposure: public", f"{OV}:9: exposure: Input should be 'localhost' or 'lan'"),
    ("bind: 127.0.0.1", "bind: not-an-ip", f"{OV}:7: bind: Value error, bind must be an IP address"),
    ("kind: backend", "kind: backend\nkind: client", f"{OV}:4: invalid YAML: found duplicate key \"kind\""),
    ("{name: jerry-small, upstream_id: small-1b}", "{name: jerry-small}",
     f"{OV}:22: models.0.upstream_id: required field is missing"),
])
def test_broken_contract_exits_2_with_file_and_line(mesh: Path, command: tuple[str, ...], old: str,
                                                    new: str, expected: str) -> None:
    edit(mesh, OV, old, new)
    before = git(mesh, "status", "--porcelain")
    code, out, err = run_cli(mesh, *command)
    assert code == 2, out + err
    assert f"error: {expected}" in err, err
    assert "Traceback" not in out + err
    assert git(mesh, "status", "--porcelain") == before  # nothing written


def test_port_as_string_is_a_type_error(mesh: Path) -> None:
    text = (mesh / OV).read_text()
    port = next(l for l in text.splitlines() if l.startswith("port:")).split()[1]
    edit(mesh, OV, f"port: {port}", "port: eighty")
    code, _, err = run_cli(mesh, "check")
    assert code == 2 and f"{OV}:8: port: Input should be a valid integer" in err


def test_duplicate_service_names(mesh: Path) -> None:
    (mesh / "layer-inference/ov2").mkdir()
    (mesh / "layer-inference/ov2/SERVICE_SPEC.md").write_text((mesh / OV).read_text())
    code, _, err = run_cli(mesh, "check")
    assert code == 2
    assert f"layer-inference/ov2/SERVICE_SPEC.md:2: duplicate service name 'ov' (also in {OV})" in err


def test_duplicate_ledger_port(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml", "ports:\n", "ports:\n  - {host: box, port: 4000, service: x, since: 2026-01-01}\n")
    code, _, err = run_cli(mesh, "check")
    assert code == 2 and "mesh/ports.yaml:4: duplicate ledger port box:4000 (first at ports[0])" in err


def test_missing_mesh_file(mesh: Path) -> None:
    (mesh / "mesh/approvals.yaml").unlink()
    code, _, err = run_cli(mesh, "check")
    assert (code, err.strip()) == (2, "error: mesh/approvals.yaml: file is missing")


def test_every_broken_file_is_reported_at_once(mesh: Path) -> None:
    edit(mesh, OV, "port: 40", "port: [40")
    edit(mesh, "mesh/mesh.yaml", "role: all-in-one", "role: all-in-one\n    rack: 2")
    code, _, err = run_cli(mesh, "check")
    assert code == 2 and f"{OV}:9" in err and "mesh/mesh.yaml:9: hosts.0.rack: unknown field" in err


def test_unclosed_front_matter(mesh: Path) -> None:
    (mesh / OV).write_text("---\nname: ov\n")
    code, _, err = run_cli(mesh, "check")
    assert code == 2 and f"{OV}:1: front-matter block opened on line 1 is never closed" in err


def test_real_entry_point_has_no_traceback(mesh: Path) -> None:
    edit(mesh, OV, "port: 40", "port: [40")
    proc = subprocess.run(["uv", "run", "--frozen", "homelab", "--repo", str(mesh), "check"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and f"{OV}:9" in proc.stderr


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.text(max_size=8),
                         st.floats(allow_nan=False))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
FIELDS = ["name", "kind", "layer", "description", "host", "bind", "port", "exposure", "approval",
          "endpoints", "health", "env", "run", "models", "aliases", "mcp", "client", "upstreams"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), yaml_values, max_size=10))
def test_garbage_contracts_never_crash(doc: dict) -> None:
    import json

    text = "---\n" + json.dumps(doc) + "\n---\n"  # JSON is YAML: arbitrary structure, valid syntax
    try:
        parse_service(text, "x/SERVICE_SPEC.md")
    except InputError as exc:
        assert exc.problems and all(p.path == "x/SERVICE_SPEC.md" for p in exc.problems)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_garbage_text_never_crashes(text: str) -> None:
    try:
        parse_service(text, "x/SERVICE_SPEC.md")
        parse_service("---\n" + text + "\n---\n", "x/SERVICE_SPEC.md")
    except InputError as exc:
        assert all(str(p).startswith("x/SERVICE_SPEC.md") for p in exc.problems)


def test_load_repo_in_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_repo(tmp_path)
    assert [p.path for p in exc.value.problems] == ["mesh/mesh.yaml", "mesh/ports.yaml", "mesh/approvals.yaml"]
