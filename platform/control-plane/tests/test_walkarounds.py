"""Issue 16: one test per way a careless contributor walked around the mesh's rules. Each must
fail without its fix (see the report for the ones proven so)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import edit, git, rerender, violations
from test_bad_input import run_cli

from homelab.load.repo import load_repo
from homelab.render import rules_doc
from homelab.rules import catalog, live

OV = "layer-inference/ov/SERVICE_SPEC.md"
AGENT_DIR = "layer-orchestration/agent"
PORTS = "mesh/ports.yaml"


def port_of(mesh: Path, service: str) -> int:
    return yaml.safe_load((mesh / f"{service}").read_text().split("---")[1])["port"]


def codes(mesh: Path, **kw: object) -> list[str]:
    return [v.code for v in violations(mesh, **kw)]  # type: ignore[arg-type]


# --- ports cannot move silently ---------------------------------------------------------------

def test_ledger_line_edited_in_place_is_caught_by_plain_check(mesh: Path) -> None:
    """Was: edit the ledger line and the contract together; plain `check` is clean."""
    edit(mesh, PORTS, "port: 4010, service: ov", "port: 4015, service: ov")
    edit(mesh, OV, "port: 4010", "port: 4015")
    found = [v for v in violations(mesh) if v.code.startswith("HL2")]
    assert [(v.code, v.path) for v in found] == [("HL205", PORTS)]
    assert "box:4010 (ov) is in the ledger at HEAD and has been removed" in found[0].message
    code, out, _ = run_cli(mesh, "render")
    assert code == 1 and "HL205" in out  # render refuses too: nothing is written


def test_ledger_line_edited_after_commit_is_caught_against_the_parent(mesh: Path) -> None:
    """CI builds a fresh clone of the branch: the edit is committed; HEAD^ is the base."""
    edit(mesh, PORTS, "port: 4010, service: ov", "port: 4015, service: ov")
    edit(mesh, OV, "port: 4010", "port: 4015")
    git(mesh, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "move a port by hand")
    assert "HL205" in codes(mesh)
    clone = mesh.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(mesh), str(clone)], check=True)
    assert "HL205" in codes(clone)  # a fresh clone of the branch still sees it (origin/HEAD^)


def test_second_active_ledger_line_for_a_service(mesh: Path) -> None:
    """Was: append a second line for an existing service; clean even with --base."""
    edit(mesh, PORTS, "  - {host: box, port: 4010, service: ov", "  - {host: box, port: 4015, service: ov, "
         "since: 2026-12-01}\n  - {host: box, port: 4010, service: ov")
    edit(mesh, OV, "port: 4010", "port: 4015")
    found = [v for v in violations(mesh, base="HEAD") if v.code == "HL208"]
    assert len(found) == 1 and found[0].path == PORTS and found[0].line == 6
    assert found[0].message == "ov has 2 active ledger lines on box (4015, 4010); the contract uses 4015"
    assert "homelab port move" in found[0].fix


def test_hl201_says_how_to_move_a_port_and_port_move_does_it(mesh: Path) -> None:
    """Was: HL201's fix ("allocate a new one with `homelab new`") could not be followed."""
    edit(mesh, OV, "port: 4010", "port: 4019")
    found = [v for v in violations(mesh) if v.code == "HL201"]
    assert "uv run homelab port move NAME" in found[0].fix
    edit(mesh, OV, "port: 4019", "port: 4010")
    code, out, err = run_cli(mesh, "port", "move", "ov")
    assert code == 0, out + err
    assert "ov: port 4010 retired, now 4011" in out
    assert violations(mesh) == [] and violations(mesh, base="HEAD") == []
    ledger = yaml.safe_load((mesh / PORTS).read_text())["ports"]
    mine = [(p["port"], p.get("status", "active")) for p in ledger if p["service"] == "ov"]
    assert mine == [(4010, "retired"), (4011, "active")]
    router = (mesh / "layer-gateway/gw/config/router.yaml").read_text()
    assert "http://127.0.0.1:4011/v1" in router and ":4010/" not in router


def test_moving_the_gateway_moves_its_public_url_and_the_clients_defaults(mesh: Path) -> None:
    code, out, err = run_cli(mesh, "port", "move", "gw", "--port", "4001")
    assert code == 0, out + err
    assert "public_base_url: http://127.0.0.1:4001/v1" in (mesh / "mesh/mesh.yaml").read_text()
    agent = (mesh / f"{AGENT_DIR}/SERVICE_SPEC.md").read_text()
    assert "http://127.0.0.1:4001/v1" in agent and "127.0.0.1:4000" not in agent
    assert violations(mesh) == []


@pytest.mark.parametrize(("spec", "old", "new", "code"), [
    (OV, "port: 4010", "port: 4020", "HL203"),  # collides with opt
    (OV, "bind: 127.0.0.1", "bind: 0.0.0.0", "HL301"),  # LAN without approval
])
def test_render_refuses_port_and_exposure_violations(mesh: Path, spec: str, old: str, new: str,
                                                    code: str) -> None:
    """Was: `render` exited 0 and wrote a colliding port into router.yaml and the units."""
    edit(mesh, spec, old, new)
    before = git(mesh, "status", "--porcelain")
    got, out, err = run_cli(mesh, "render")
    assert got == 1 and code in out and "refusing to render" in err
    assert git(mesh, "status", "--porcelain") == before


# --- clients reach the gateway only -------------------------------------------------------------

def test_backend_address_in_a_clients_source_fails_hl401(mesh: Path) -> None:
    """Was: a base URL hard-coded in the client's Python passed (only contract fields were read)."""
    src = mesh / AGENT_DIR / "src/agent/extra.py"
    src.write_text('"""Talks to the model."""\n\nBASE = "http://127.0.0.1:4010/v1"\nALT = "localhost:4020"\n'
                   'DENY = ["127.0.0.1:4010"]  # homelab: allow-address (refused on purpose)\n')
    (mesh / AGENT_DIR / "tests/test_extra.py").write_text('BAD = "http://127.0.0.1:4010/v1"\n')
    found = [(v.path, v.line) for v in violations(mesh) if v.code == "HL401"]
    assert found == [(f"{AGENT_DIR}/src/agent/extra.py", 3), (f"{AGENT_DIR}/src/agent/extra.py", 4)]


# --- placeholders -------------------------------------------------------------------------------

def test_agents_md_with_only_todo_fails(mesh: Path) -> None:
    """Was: an AGENTS.md containing only "TODO" passed."""
    (mesh / AGENT_DIR / "AGENTS.md").write_text("TODO\n")
    found = [v for v in violations(mesh) if v.code == "HL109"]
    assert [(v.path, v.line) for v in found] == [(f"{AGENT_DIR}/AGENTS.md", 1)]


def test_todo_in_a_contract_fails_before_the_registry_publishes_it(mesh: Path) -> None:
    """Was: the registry published 'TODO: what the tool does.' to agents."""
    edit(mesh, "layer-tools/fetcher/SERVICE_SPEC.md", "outputs: '{text, length}'", "outputs: TODO")
    rerender(mesh)
    found = [v for v in violations(mesh) if v.code == "HL109"]
    assert [(v.path, v.message) for v in found] == [
        ("layer-tools/fetcher/SERVICE_SPEC.md", "placeholder left: 'outputs: TODO'")]


# --- approvals ----------------------------------------------------------------------------------

APPROVAL = ("  - {id: LAN-0002, service: ov, host: box, who: carol, %s date: 2026-12-01, "
            "reason: GPU box}\n")


@pytest.mark.parametrize(("reviewer", "message"), [
    ("", "LAN-0002 (ov on box) names no `reviewer`"),
    ("reviewer: Carol,", "LAN-0002 is reviewed by its own requester (carol)"),
    ("reviewer: Me Myself,", "LAN-0002 is added by this change and names its author (Me Myself) as reviewer"),
])
def test_self_written_approvals_fail(mesh: Path, reviewer: str, message: str) -> None:
    """Was: approvals could be self-written, with no reviewer field checked."""
    git(mesh, "config", "user.name", "Me Myself")
    (mesh / "mesh/approvals.yaml").write_text((mesh / "mesh/approvals.yaml").read_text() + APPROVAL % reviewer)
    found = [v for v in violations(mesh) if v.code == "HL305"]
    assert [v.message for v in found] == [message] and found[0].line == 3


def test_approval_committed_by_its_reviewer_fails_against_the_base(mesh: Path) -> None:
    (mesh / "mesh/approvals.yaml").write_text((mesh / "mesh/approvals.yaml").read_text()
                                              + APPROVAL % "reviewer: dave,")
    git(mesh, "-c", "user.name=dave", "-c", "user.email=d@x", "commit", "-qam", "approve myself")
    assert [v.code for v in violations(mesh)] == ["HL305"]  # compared with HEAD^ by default
    git(mesh, "-c", "user.name=erin", "-c", "user.email=e@x", "commit", "-q", "--amend",
        "--reset-author", "-m", "approve carol's box")
    assert violations(mesh) == []  # dave reviewed what erin wrote


# --- removing a service -------------------------------------------------------------------------

def test_rm_removes_the_service_and_every_trace(mesh: Path) -> None:
    """Was: removing a service left its unit and env example behind."""
    for args in (["backend", "b2", "-d", "Second.", "--model", "jerry-b2=b2", "--gateway-auth"],
                 ["backend", "b3", "-d", "Third.", "--model", "jerry-b3=b3", "--fallback", "jerry-b2"]):
        assert run_cli(mesh, "new", *args)[0] == 0
    git(mesh, "add", "-A")
    git(mesh, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "two backends")
    assert (mesh / "platform/ops/systemd/homelab-b2.service").is_file()
    assert (mesh / "platform/ops/env/b2.env.example").is_file()
    code, out, err = run_cli(mesh, "rm", "b2", "--yes")
    assert code == 0, out + err
    assert not (mesh / "layer-inference/b2").exists()
    for rel in ("platform/ops/systemd/homelab-b2.service", "platform/ops/env/b2.env.example"):
        assert not (mesh / rel).exists(), rel
    gw = (mesh / "layer-gateway/gw/SERVICE_SPEC.md").read_text()
    assert "B2_API_KEY" not in gw and "b2" not in re.findall(r"upstreams: \[(.*)\]", gw)[0]
    b3 = (mesh / "layer-inference/b3/SERVICE_SPEC.md").read_text()
    assert "fallbacks" not in b3
    router = (mesh / "layer-gateway/gw/config/router.yaml").read_text()
    assert "jerry-b2" not in router and "b2" not in (mesh / "platform/ops/scripts/restart-all.sh").read_text()
    ledger = yaml.safe_load((mesh / PORTS).read_text())["ports"]
    assert [p.get("status") for p in ledger if p["service"] == "b2"] == ["retired"]
    assert violations(mesh) == []  # retiring is the allowed ledger change


def test_rm_refuses_what_would_break_and_writes_nothing(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "rm", "ov", "--yes")
    assert code == 2
    assert "optimizer opt serves only aliases of ov's models (jerry-small); remove it first" in err
    assert "agent defaults to model jerry-small" in err
    assert run_cli(mesh, "rm", "gw", "--yes")[0] == 2
    assert git(mesh, "status", "--porcelain") == ""


def test_a_folder_deleted_by_hand_leaves_orphans_that_check_names_and_render_deletes(mesh: Path) -> None:
    subprocess.run(["rm", "-r", str(mesh / "layer-tools/fetcher")], check=True)
    found = {(v.code, v.path) for v in violations(mesh)}
    assert ("HL802", "platform/ops/systemd/homelab-fetcher.service") in found
    assert ("HL206", PORTS) in found  # its port must be retired, not left active
    edit(mesh, PORTS, "service: fetcher, since: 2026-11-27}", "service: fetcher, since: 2026-11-27, "
         "status: retired, retired: 2026-12-01}")
    code, out, _ = run_cli(mesh, "render")
    assert code == 0 and "deleted platform/ops/systemd/homelab-fetcher.service" in out
    assert violations(mesh) == []


# --- docs and messages --------------------------------------------------------------------------

def test_topology_diagram_is_generated(mesh: Path) -> None:
    """Was: the ASCII diagram sat outside the generated markers and was stale."""
    topology = (mesh / "docs/foundation/topology.md").read_text()
    assert "    ├─ jerry-small ─► ov 127.0.0.1:4010 (backend)" in topology
    edit(mesh, "docs/foundation/topology.md", "jerry-small ─► ov", "jerry-small ─► ov-old")
    found = [v for v in violations(mesh) if v.code == "HL801"]
    assert len(found) == 1 and found[0].path == "docs/foundation/topology.md"
    assert "ov-old" in found[0].message and "-    ├─ jerry-small ─► ov-old" in found[0].detail


def test_every_violation_has_a_line_and_its_documented_fix(mesh: Path) -> None:
    """Was: HL101/202/203/301/601 named no fix; HL403 and others had no line."""
    edit(mesh, OV, "port: 4010", "port: 4020")  # HL202, HL203
    edit(mesh, OV, "bind: 127.0.0.1", "bind: 0.0.0.0")  # HL301, HL303
    edit(mesh, OV, "{name: jerry-small, upstream_id: small-1b}",
         "{name: jerry-small, upstream_id: small-1b, fallbacks: [jerry-nope]}")  # HL403
    edit(mesh, OV, "models:", "gateway_auth_env: NOPE_KEY\nmodels:")  # HL601
    (mesh / "layer-tools/fetcher/AGENTS.md").unlink()  # HL101
    edit(mesh, "layer-gateway/gw/SERVICE_SPEC.md", "  after: [ov]", "  after: [ov, opt]")  # HL406
    edit(mesh, "platform/ops/systemd/homelab-ov.service", "RestartSec=2", "RestartSec=3")  # HL801
    found = violations(mesh)
    assert {"HL101", "HL202", "HL203", "HL301", "HL303", "HL403", "HL406", "HL601", "HL801"} <= {
        v.code for v in found}
    doc = (Path(__file__).resolve().parents[3] / rules_doc.RULES_DOC).read_text()
    for v in found:
        assert v.line, v.as_text()
        assert v.fix == catalog.RULES[v.code].fix and v.name == catalog.RULES[v.code].name
        assert f"| {v.fix} |" in doc  # the same text as rules.md
        assert f"    fix: {v.fix}" in v.as_text()
    code, out, _ = run_cli(mesh, "check", "--json")
    assert code == 1 and all(row["fix"] and row["line"] for row in json.loads(out)["violations"])


def test_hl801_shows_the_whole_differing_line(mesh: Path) -> None:
    """Was: both versions cut at ~80 characters, sometimes at identical text."""
    unit = "platform/ops/systemd/homelab-ov.service"
    text = (mesh / unit).read_text()
    line = next(l for l in text.splitlines() if l.startswith("Description="))
    edit(mesh, unit, line, line + " " + "x" * 120)
    found = [v for v in violations(mesh) if v.code == "HL801"]
    assert repr(line + " " + "x" * 120) in found[0].message and repr(line) in found[0].message


def test_rules_doc_tables_are_the_catalog() -> None:
    repo_root = Path(__file__).resolve().parents[3]
    current = (repo_root / rules_doc.RULES_DOC).read_text()
    assert rules_doc.render_rules_doc(current) == current
    assert all(f"| {r.code} | {r.name} |" in current for r in catalog.RULES.values())


# --- the live MCP check, pure part --------------------------------------------------------------

def test_live_compare_names_missing_extra_and_mistyped_tools(mesh: Path) -> None:
    svc = load_repo(mesh).services["fetcher"]
    ok = [{"name": "fetch", "inputSchema": {"properties": {
        "text": {"type": "string"}, "times": {"default": 1, "type": "integer"}}}}]
    assert list(live.compare(svc, ok)) == []
    wrong = [{"name": "fetch", "inputSchema": {"properties": {
        "text": {"type": "string"}, "times": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}},
        {"name": "other", "inputSchema": {}}]
    messages = sorted(v.message for v in live.compare(svc, wrong))
    assert messages == ["fetcher's server lists tool 'other', which the contract does not declare",
                        "fetcher: tool fetch input 'times' is null/string in the server but integer "
                        "in the contract"]
    assert [v.message for v in live.compare(svc, [])] == [
        "fetcher's server does not list the contract's tool 'fetch' (it lists: nothing)"]
