"""HL5xx backends and names, HL6xx env and secrets, HL7xx uv, HL801 drift."""

from pathlib import Path

from conftest import by_code, edit, git, rerender, violations

OV = "layer-inference/ov/SERVICE_SPEC.md"
ROUTER = "layer-gateway/gw/config/router.yaml"


def test_backend_missing_endpoint(mesh: Path) -> None:
    edit(mesh, OV, "  - {method: GET, path: /v1/models}\n", "")
    found = by_code(mesh, "HL501")
    assert [(v.path, v.message) for v in found] == [(OV, "backend ov does not declare GET /v1/models")]


def test_public_name_off_pattern(mesh: Path) -> None:
    edit(mesh, OV, "{name: jerry-small,", "{name: Small_Model,")
    rerender(mesh)
    found = by_code(mesh, "HL502")
    assert len(found) == 1 and found[0].line is not None
    assert "'Small_Model' does not match the mesh pattern ^jerry-" in found[0].message


def test_naming_pattern_is_configurable(mesh: Path) -> None:
    edit(mesh, "mesh/mesh.yaml", "hosts:", "model_name_pattern: ^tom-[a-z]+$\nhosts:")
    assert len(by_code(mesh, "HL502")) == 2  # jerry-small and jerry-small-moa


def test_mcp_stdio_without_command(mesh: Path) -> None:
    spec = "layer-tools/fetcher/SERVICE_SPEC.md"
    edit(mesh, spec, "transport: streamable-http", "transport: stdio")
    edit(mesh, spec, "stdio_command: [uv, run, fetcher, --transport, stdio]", "stdio_command: []")
    found = by_code(mesh, "HL503")
    assert [v.message for v in found] == ["fetcher serves stdio but declares no mcp.stdio_command"]


def test_router_env_reference_not_declared(mesh: Path) -> None:
    edit(mesh, ROUTER, "  num_retries: 0  # fail fast", "  num_retries: 0  # fail fast\n  redis_password: os.environ/REDIS_PASSWORD")
    found = by_code(mesh, "HL601")
    line = (mesh / ROUTER).read_text().splitlines().index("  redis_password: os.environ/REDIS_PASSWORD") + 1
    assert [(v.path, v.line) for v in found] == [(ROUTER, line)]
    assert "os.environ/REDIS_PASSWORD, which the gateway's contract does not declare" in found[0].message


def test_gateway_auth_env_not_declared(mesh: Path) -> None:
    edit(mesh, OV, "systemd: {unit: homelab-ov.service}",
         "systemd: {unit: homelab-ov.service}\ngateway_auth_env: OV_KEY")
    rerender(mesh)
    got = {(v.path, v.message) for v in by_code(mesh, "HL601")}
    assert (OV, "gateway_auth_env OV_KEY is not declared in the gateway's env") in got
    assert any(p == ROUTER and "OV_KEY" in m for p, m in got)  # the rendered router reads it too


def test_env_local_tracked_and_not_ignored(mesh: Path) -> None:
    (mesh / ".gitignore").write_text("")
    (mesh / "layer-gateway/gw/config/env.local").write_text("LITELLM_MASTER_KEY=sk-local\n")
    git(mesh, "add", "layer-gateway/gw/config/env.local")
    found = by_code(mesh, "HL602")
    assert {v.path for v in found} == {"layer-gateway/gw/config/env.local", ".gitignore"}


def test_env_local_missing_required_key(mesh: Path) -> None:
    (mesh / "layer-gateway/gw/config/env.local").write_text("# local\nLITELLM_MASTER_KEY=\n")
    found = by_code(mesh, "HL604")
    assert [v.message for v in found] == [
        "required key LITELLM_MASTER_KEY is not set; the gateway will not start"]
    (mesh / "layer-gateway/gw/config/env.local").write_text("LITELLM_MASTER_KEY=sk-1\n")
    assert by_code(mesh, "HL604") == []


def test_committed_secret(mesh: Path) -> None:
    fake = "sk-" + "A1b2" * 10
    (mesh / "layer-inference/ov/notes.txt").write_text(f"hello\nkey = {fake}\n")
    (mesh / "layer-inference/ov/fixture.txt").write_text(f"key = {fake}  # homelab: allow-secret\n")
    git(mesh, "add", "-A")
    found = by_code(mesh, "HL603")
    assert [(v.path, v.line) for v in found] == [("layer-inference/ov/notes.txt", 2)]


def test_assigned_secret_but_not_placeholder(mesh: Path) -> None:
    fake = "Zx81kQ03mmP7q2Lr" + "T55vVb9w"  # split so this file does not trip the rule itself
    (mesh / "a.env").write_text(f"API_TOKEN={fake}\nAPI_TOKEN=changeme\nMASTER_KEY=os.environ/X\n")
    git(mesh, "add", "a.env")
    assert [(v.path, v.line) for v in by_code(mesh, "HL603")] == [("a.env", 1)]


def test_uv_lock_missing(mesh: Path) -> None:
    (mesh / "layer-tools/fetcher/uv.lock").unlink()
    found = by_code(mesh, "HL701")
    assert [(v.path, v.line, v.message) for v in found] == [
        ("layer-tools/fetcher/SERVICE_SPEC.md", 16,
         "fetcher runs with uv (run.uv_project) but layer-tools/fetcher/uv.lock is missing")]


def test_generated_file_edited_by_hand(mesh: Path) -> None:
    edit(mesh, "platform/ops/systemd/homelab-ov.service", "RestartSec=2", "RestartSec=30")
    found = by_code(mesh, "HL801")
    assert [v.path for v in found] == ["platform/ops/systemd/homelab-ov.service"]
    line = (mesh / "platform/ops/systemd/homelab-ov.service").read_text().splitlines().index("RestartSec=30") + 1
    assert found[0].line == line
    assert f"line {line} is 'RestartSec=30', render writes 'RestartSec=2'" in found[0].message
    assert "-RestartSec=30\n+RestartSec=2" in found[0].detail  # a unified diff excerpt


def test_contract_change_without_render(mesh: Path) -> None:
    edit(mesh, OV, "upstream_id: small-1b", "upstream_id: small-2b")
    paths = {v.path for v in by_code(mesh, "HL801")}
    assert paths == {ROUTER, "docs/foundation/topology.md", "mesh/view.json"}  # the view lists routes
    rerender(mesh)
    assert violations(mesh) == []
