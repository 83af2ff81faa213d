"""HL2xx: ports are immutable."""

from pathlib import Path

from conftest import edit, git, violations

SPEC = "layer-inference/ov/SERVICE_SPEC.md"


def port_of(mesh: Path, service: str) -> int:
    text = (mesh / "mesh/ports.yaml").read_text()
    line = next(l for l in text.splitlines() if f"service: {service}," in l)
    return int(line.split("port: ")[1].split(",")[0])


def test_port_differs_from_ledger(mesh: Path) -> None:
    old = port_of(mesh, "ov")
    edit(mesh, SPEC, f"port: {old}", "port: 4555")
    found = [v for v in violations(mesh) if v.code.startswith("HL2")]
    assert [(v.code, v.name, v.path) for v in found] == [("HL201", "port-not-in-ledger", SPEC)]
    assert f"(the ledger gives it {old})" in found[0].message
    assert found[0].line == 8


def test_port_belongs_to_another_service(mesh: Path) -> None:
    edit(mesh, SPEC, f"port: {port_of(mesh, 'ov')}", f"port: {port_of(mesh, 'opt')}")
    found = [v for v in violations(mesh) if v.code == "HL202"]
    assert len(found) == 1 and "belongs to opt in the ledger, not ov" in found[0].message


def test_two_services_on_one_port(mesh: Path) -> None:
    edit(mesh, SPEC, f"port: {port_of(mesh, 'ov')}", f"port: {port_of(mesh, 'opt')}")
    found = [v for v in violations(mesh) if v.code == "HL203"]
    assert len(found) == 1
    assert f"box:{port_of(mesh, 'opt')} is used by opt, ov" == found[0].message


def test_retired_port_reused(mesh: Path) -> None:
    edit(mesh, SPEC, f"port: {port_of(mesh, 'ov')}", "port: 4009")
    found = [v for v in violations(mesh) if v.code == "HL204"]
    assert len(found) == 1 and "was retired (old-thing)" in found[0].message


def test_ledger_line_removed_caught_against_base(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml",
         "  - {host: box, port: 4009, service: old-thing, status: retired, since: 2026-01-01, retired: 2026-06-01}\n", "")
    # No --base needed: check compares with git by default (HEAD here: the edit is not committed).
    for found in ([v for v in violations(mesh) if v.code != "HL801"],
                  [v for v in violations(mesh, base="HEAD") if v.code != "HL801"]):
        assert [(v.code, v.name) for v in found] == [("HL205", "ledger-line-removed")]
        assert "box:4009 (old-thing) is in the ledger at HEAD and has been removed" in found[0].message
    assert [v.code for v in violations(mesh, history=False) if v.code != "HL801"] == []


def test_ledger_line_edited_caught_against_base(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml", "service: old-thing, status: retired", "service: old-thing, status: active")
    found = [v for v in violations(mesh, base="HEAD") if v.code == "HL207"]
    assert len(found) == 1 and "only active -> retired is allowed" in found[0].message
    assert found[0].line == 4


def test_retiring_a_port_is_allowed(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml", "port: 4000, service: gw, since: 2026-11-01",
         "port: 4000, service: gw, since: 2026-11-01, status: retired")
    assert "HL205" not in [v.code for v in violations(mesh, base="HEAD")]
    assert "HL207" not in [v.code for v in violations(mesh, base="HEAD")]


def test_active_ledger_entry_without_service(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml", "status: retired, since: 2026-01-01", "status: active, since: 2026-01-01")
    found = [v for v in violations(mesh) if v.code == "HL206"]
    assert len(found) == 1 and "old-thing, which has no contract" in found[0].message


def test_base_ref_must_exist(mesh: Path) -> None:
    import pytest

    from homelab.errors import InputError

    with pytest.raises(InputError) as exc:
        violations(mesh, base="no-such-ref")
    assert "base 'no-such-ref'" in str(exc.value) and "not a commit" in str(exc.value)
    assert git(mesh, "status", "--porcelain") == ""


def test_a_base_from_the_environment_that_is_not_fetched_is_a_note_not_an_error(
        mesh: Path, monkeypatch) -> None:  # noqa: ANN001
    """CI on a pull request names the target branch, which a shallow checkout may lack."""
    from homelab.load.repo import load_repo
    from homelab.rules.history import resolve

    monkeypatch.setenv("GITHUB_BASE_REF", "main-not-fetched")
    history = resolve(load_repo(mesh).root)
    assert [b.label for b in history.bases] == ["HEAD"]
    assert "origin/main-not-fetched" in (history.note or "")
