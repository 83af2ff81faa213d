"""HL3xx exposure and HL4xx topology."""

from pathlib import Path

from conftest import by_code, edit, rerender, violations

OV = "layer-inference/ov/SERVICE_SPEC.md"
OPT = "layer-gateway/opt/SERVICE_SPEC.md"
AGENT = "layer-orchestration/agent/SERVICE_SPEC.md"


def test_lan_bind_without_approval(mesh: Path) -> None:
    edit(mesh, OV, "bind: 127.0.0.1", "bind: 0.0.0.0")
    edit(mesh, OV, "exposure: localhost", "exposure: lan")
    found = by_code(mesh, "HL301")
    assert len(found) == 1 and found[0].path == OV
    assert found[0].message == "ov binds 0.0.0.0 (LAN) but no `approval:` is given"


def test_lan_bind_with_someone_elses_approval(mesh: Path) -> None:
    edit(mesh, OV, "bind: 127.0.0.1", "bind: 0.0.0.0")
    edit(mesh, OV, "exposure: localhost", "exposure: lan\napproval: LAN-0001")
    found = by_code(mesh, "HL301")
    assert len(found) == 1 and "approval LAN-0001 is for gw on box, not ov on box" in found[0].message


def test_optimizer_on_lan_even_with_approval(mesh: Path) -> None:
    edit(mesh, OPT, "bind: 127.0.0.1", "bind: 0.0.0.0")
    edit(mesh, OPT, "exposure: localhost", "exposure: lan\napproval: LAN-0002")
    edit(mesh, "mesh/approvals.yaml", "approvals:\n",
         "approvals:\n  - {id: LAN-0002, service: opt, host: box, who: x, date: 2026-11-02, reason: y}\n")
    found = by_code(mesh, "HL302")
    assert [(v.path, v.line) for v in found] == [(OPT, 7)]
    assert "no approval overrides that" in found[0].message


def test_exposure_field_must_match_bind(mesh: Path) -> None:
    edit(mesh, OV, "exposure: localhost", "exposure: lan")
    found = by_code(mesh, "HL303")
    assert len(found) == 1 and "exposure is 'lan' but bind 127.0.0.1 is loopback" in found[0].message


def test_loopback_upstream_on_another_host(mesh: Path) -> None:
    edit(mesh, "mesh/mesh.yaml", "hosts:\n", "hosts:\n  - {name: gpu, address: 10.9.9.9, role: inference}\n")
    edit(mesh, OV, "host: box", "host: gpu")
    edit(mesh, "mesh/ports.yaml", "ports:\n", "ports:\n  - {host: gpu, port: PORT, service: ov, since: 2026-11-02}\n")
    port = next(l for l in (mesh / OV).read_text().splitlines() if l.startswith("port:")).split()[1]
    edit(mesh, "mesh/ports.yaml", "PORT", port)
    edit(mesh, "mesh/ports.yaml", f"port: {port}, service: ov, since: 2026-11-27}}",
         f"port: {port}, service: ov, since: 2026-11-27, status: retired}}")
    found = by_code(mesh, "HL304")
    assert sorted(v.message for v in found) == [
        "gw on box calls ov, which binds loopback on gpu",
        "the gateway on box cannot reach ov, which binds loopback on gpu"]


def test_client_default_pointing_at_backend(mesh: Path) -> None:
    port = next(l for l in (mesh / OV).read_text().splitlines() if l.startswith("port:")).split()[1]
    edit(mesh, AGENT, "default_api_base: http://127.0.0.1:4000/v1", f"default_api_base: http://127.0.0.1:{port}/v1")
    found = by_code(mesh, "HL401")
    assert len(found) == 1 and found[0].path == AGENT
    assert f"points at http://127.0.0.1:{port}/v1, the address of ov" in found[0].message


def test_client_env_default_pointing_at_optimizer(mesh: Path) -> None:
    port = next(l for l in (mesh / OPT).read_text().splitlines() if l.startswith("port:")).split()[1]
    edit(mesh, AGENT, "default: http://127.0.0.1:4000/v1", f"default: http://localhost:{port}/v1")
    found = by_code(mesh, "HL401")  # `localhost` is the optimizer's loopback address too
    assert len(found) == 1 and "the address of opt" in found[0].message


def test_client_config_file_pointing_at_backend(mesh: Path) -> None:
    port = next(l for l in (mesh / OV).read_text().splitlines() if l.startswith("port:")).split()[1]
    edit(mesh, AGENT, "default_model: jerry-small", "default_model: jerry-small\n  config_files: [agent.json]")
    (mesh / "layer-orchestration/agent/agent.json").write_text(
        '{\n  "model": "jerry-small",\n  "endpointUrl": "http://127.0.0.1:%s/v1"\n}\n' % port)
    found = by_code(mesh, "HL401")
    assert [(v.path, v.line) for v in found] == [("layer-orchestration/agent/agent.json", 3)]


def test_client_calling_backend_directly(mesh: Path) -> None:
    edit(mesh, AGENT, "upstreams: [gw]", "upstreams: [gw, ov]")
    found = by_code(mesh, "HL401")
    assert len(found) == 1 and "client agent calls backend ov directly" in found[0].message


def test_routing_cycle_is_reported_with_the_cycle(mesh: Path) -> None:
    edit(mesh, OPT, "target: jerry-small", "target: jerry-small-moa")
    rerender(mesh)
    found = by_code(mesh, "HL402")
    assert len(found) == 1
    assert found[0].message == ("routing loop: jerry-small-moa -> opt(moa-jerry-small-moa) -> gateway "
                                "-> jerry-small-moa")


def test_two_alias_cycle(mesh: Path) -> None:
    edit(mesh, OPT, "  - {name: jerry-small-moa, approach: moa, target: jerry-small}",
         "  - {name: jerry-a, approach: moa, target: jerry-b}\n"
         "  - {name: jerry-b, approach: re2, target: jerry-a}")
    rerender(mesh)
    found = by_code(mesh, "HL402")
    assert len(found) == 1 and "jerry-a -> opt(moa-jerry-b) -> gateway -> jerry-b -> opt(re2-jerry-a)" \
        in found[0].message


def test_unknown_upstream_and_targets(mesh: Path) -> None:
    edit(mesh, AGENT, "upstreams: [gw]", "upstreams: [gw, ghost]")
    edit(mesh, OPT, "target: jerry-small", "target: jerry-nowhere")
    edit(mesh, OV, "upstream_id: small-1b}", "upstream_id: small-1b, fallbacks: [jerry-missing]}")
    rerender(mesh)
    messages = {v.message for v in by_code(mesh, "HL403")}
    assert "upstream 'ghost' is not a service in the mesh" in messages
    assert "alias jerry-small-moa targets 'jerry-nowhere', which the gateway does not serve" in messages
    assert "jerry-small falls back to 'jerry-missing', which is not another public name" in messages


def test_gateway_missing(mesh: Path) -> None:
    edit(mesh, "mesh/mesh.yaml", "service: gw", "service: ov")
    found = {v.path: v for v in by_code(mesh, "HL404")}
    assert found["mesh/mesh.yaml"].line == 3
    assert found["mesh/mesh.yaml"].message == "gateway.service 'ov' is not a service of kind gateway"
    assert found["layer-gateway/gw/SERVICE_SPEC.md"].message == "gw is a second gateway; mesh.yaml names ov"


def test_duplicate_public_name(mesh: Path) -> None:
    edit(mesh, OPT, "{name: jerry-small-moa,", "{name: jerry-small,")
    rerender(mesh)
    assert {v.code for v in violations(mesh)} >= {"HL405"}


def test_start_order_cycle(mesh: Path) -> None:
    edit(mesh, "layer-gateway/gw/SERVICE_SPEC.md", "systemd: {unit: homelab-gw.service}",
         "systemd: {unit: homelab-gw.service}\n", 1)
    edit(mesh, "layer-gateway/gw/SERVICE_SPEC.md", "  after: [ov]", "  after: [ov, opt]")
    found = by_code(mesh, "HL406")
    assert len(found) == 1 and "gw" in found[0].message and "opt" in found[0].message
