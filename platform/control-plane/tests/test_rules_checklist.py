"""HL1xx: contract files and ops/docs coverage. Each test breaks one thing and names the violation."""

from pathlib import Path

from conftest import edit, violations

from homelab.rules.base import Violation


def only(root: Path) -> Violation:
    found = violations(root)
    assert len(found) == 1, "\n".join(v.as_text() for v in found)
    return found[0]


def test_missing_agents_md(mesh: Path) -> None:
    (mesh / "layer-inference/ov/AGENTS.md").unlink()
    v = only(mesh)
    assert (v.code, v.path) == ("HL101", "layer-inference/ov/AGENTS.md")
    assert v.message == "AGENTS.md of ov is missing"


def test_empty_architecture_md(mesh: Path) -> None:
    (mesh / "layer-tools/fetcher/ARCHITECTURE.md").write_text("  \n")
    v = only(mesh)
    assert (v.code, v.message) == ("HL101", "ARCHITECTURE.md of fetcher is empty")


def test_service_folder_without_contract(mesh: Path) -> None:
    (mesh / "layer-inference/stray").mkdir()
    v = only(mesh)
    assert (v.code, v.path) == ("HL101", "layer-inference/stray/SERVICE_SPEC.md")


def test_name_differs_from_folder(mesh: Path) -> None:
    (mesh / "layer-inference/ov").rename(mesh / "layer-inference/ov2")
    found = [v for v in violations(mesh) if v.code == "HL102"]
    assert [(v.path, v.line) for v in found] == [("layer-inference/ov2/SERVICE_SPEC.md", 2)]
    assert "differs from its folder 'ov2'" in found[0].message


def test_layer_differs_from_folder(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "layer: inference", "layer: tools")
    found = [v for v in violations(mesh) if v.code == "HL102"]
    assert len(found) == 1 and found[0].line == 4


def test_service_not_in_healthcheck(mesh: Path) -> None:
    edit(mesh, "platform/ops/scripts/healthcheck.sh", '  "ov|', '  # removed "ov|')
    assert {(v.code, v.path) for v in violations(mesh)} == {
        ("HL103", "layer-inference/ov/SERVICE_SPEC.md"), ("HL801", "platform/ops/scripts/healthcheck.sh")}
    assert any(v.message == "ov declares `health` but platform/ops/scripts/healthcheck.sh has no probe "
               "for it" for v in violations(mesh))


def test_unit_missing(mesh: Path) -> None:
    (mesh / "platform/ops/systemd/homelab-opt.service").unlink()
    found = {v.code: v for v in violations(mesh)}
    assert set(found) == {"HL104", "HL801"}
    assert found["HL104"].path == "layer-gateway/opt/SERVICE_SPEC.md"
    assert "homelab-opt.service is not under platform/ops/systemd" in found["HL104"].message


def test_unit_not_in_restart_all(mesh: Path) -> None:
    edit(mesh, "platform/ops/scripts/restart-all.sh", " homelab-agent.service", "")
    found = {v.code: v for v in violations(mesh)}
    assert set(found) == {"HL105", "HL801"}
    assert found["HL105"].message == ("homelab-agent.service (agent) is not restarted by "
                                      "platform/ops/scripts/restart-all.sh")
    assert found["HL105"].path == "layer-orchestration/agent/SERVICE_SPEC.md" and found["HL105"].line


def test_not_in_topology_or_dossier(mesh: Path) -> None:
    edit(mesh, "docs/foundation/topology.md", "| fetcher |", "| something-else |", count=-1)
    edit(mesh, "docs/PLATFORM_DOSSIER.md", "[fetcher]", "[renamed]")
    got = {(v.code, v.path) for v in violations(mesh)}
    assert ("HL106", "docs/foundation/topology.md") in got
    assert ("HL107", "docs/PLATFORM_DOSSIER.md") in got


def test_unknown_host(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "host: box", "host: elsewhere")
    found = [v for v in violations(mesh) if v.code == "HL108"]
    assert found and found[0].message == "host 'elsewhere' is not declared in mesh/mesh.yaml"
