"""`homelab bundle`: one host's units, env templates, router, scripts, manifest and install.sh."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from homelab.load.repo import load_repo

from .conftest import GW_ADDR, INF_ADDR, plan_for
from .twohost import TwoHosts, copy_checkout, drop_approval, homelab, make_two_hosts


def _names(bundle: Path, sub: str) -> set[str]:
    return {p.name for p in (bundle / sub).iterdir()} if (bundle / sub).is_dir() else set()


def test_each_host_gets_only_its_own_units_and_env(mesh: TwoHosts, bundles: dict[str, Path]) -> None:
    gw, inf = bundles[mesh.gw_host], bundles[mesh.inf_host]
    assert _names(inf, "systemd") == {"homelab-ov-server.service"}
    assert "homelab-ov-server.service" not in _names(gw, "systemd")
    assert {"homelab-litellm-orch.service", "homelab-optillm-proxy.service"} <= _names(gw, "systemd")
    assert _names(inf, "env") == {"ov-server.env.example"}
    assert "ov-server.env.example" not in _names(gw, "env")
    assert "optillm-proxy.env.example" in _names(gw, "env")
    assert (gw / "env/layer-gateway/litellm-orch/config/env.local.example").is_file()
    unit = (inf / "systemd/homelab-ov-server.service").read_text()
    assert f"--host {INF_ADDR} --port 4010" in unit


def test_router_goes_only_to_the_gateway_host_and_points_across_hosts(
        mesh: TwoHosts, bundles: dict[str, Path]) -> None:
    assert not (bundles[mesh.inf_host] / "config").exists()
    router = YAML(typ="safe").load((bundles[mesh.gw_host] / "config/router.yaml").read_text())
    bases = {m["model_name"]: m["litellm_params"]["api_base"] for m in router["model_list"]}
    assert bases["jerry-tiny"] == f"http://{INF_ADDR}:4010/v1"
    assert bases["jerry-tiny-moa"] == "http://127.0.0.1:4020/v1"  # OptiLLM stays on loopback
    # Identical to what `homelab render` wrote into the checkout: one source of truth.
    assert (bundles[mesh.gw_host] / "config/router.yaml").read_text() == \
        (mesh.root / "layer-gateway/litellm-orch/config/router.yaml").read_text()


def test_ops_scripts_cover_only_the_host(mesh: TwoHosts, bundles: dict[str, Path]) -> None:
    inf = bundles[mesh.inf_host]
    health = (inf / "scripts/healthcheck.sh").read_text()
    assert f'"ov-server|{mesh.inf_host}|http://{INF_ADDR}:4010/health|' in health
    assert "litellm-orch|" not in health
    restart = (inf / "scripts/restart-all.sh").read_text()
    assert f'[{mesh.inf_host}]="homelab-ov-server.service"' in restart
    assert f"[{mesh.gw_host}]" not in restart  # the only host: restart-all.sh needs no --host
    dry = subprocess.run([str(inf / "scripts/restart-all.sh"), "--dry-run"], capture_output=True,
                         text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == "systemctl restart homelab-ov-server.service"


def test_manifest_lists_every_file_with_its_checksum(mesh: TwoHosts, bundles: dict[str, Path]) -> None:
    for host, bundle in bundles.items():
        data = json.loads((bundle / "MANIFEST.json").read_text())
        assert data["host"]["name"] == host
        on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()}
        listed = {f["path"] for f in data["files"]}
        assert listed == on_disk - {"MANIFEST.json", "MANIFEST.txt"}
        for f in data["files"]:
            assert f["sha256"] == hashlib.sha256((bundle / f["path"]).read_bytes()).hexdigest()
        text = (bundle / "MANIFEST.txt").read_text()
        assert f"bundle for host {host}" in text
    inf = json.loads((bundles[mesh.inf_host] / "MANIFEST.json").read_text())
    assert [s["name"] for s in inf["services"]] == ["ov-server"]
    assert inf["services"][0]["approval"] == "LAN-0900"
    # The key the gateway sends must equal the one ov-server expects, on another host.
    shared = {(s["name"], s["peer_host"]) for s in inf["shared_secrets"]}
    assert ("OV_SERVER_API_KEY", mesh.gw_host) in shared


def test_plan_is_pure_and_deterministic(mesh: TwoHosts) -> None:
    a, b = plan_for(mesh, mesh.gw_host), plan_for(mesh, mesh.gw_host)
    assert a == b
    # Start order: the backends left on this host (llamacpp-server), then the gateway, then the optimizer.
    gateway_at = a.units.index("homelab-litellm-orch.service")
    backends_here = {f"homelab-{s.name}.service" for s in load_repo(mesh.root).by_kind("backend")
                     if s.spec.host == mesh.gw_host and s.spec.run is not None}
    assert backends_here and set(a.units[:gateway_at]) == backends_here
    assert gateway_at < a.units.index("homelab-optillm-proxy.service")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing (Debian package `systemd`)")
def test_units_pass_systemd_analyze_verify(bundles: dict[str, Path]) -> None:
    units = [str(p) for b in bundles.values() for p in sorted((b / "systemd").glob("*.service"))]
    out = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "homelab" not in out.stderr, out.stderr  # no warnings about our units either


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck missing (Debian package `shellcheck`)")
def test_scripts_pass_shellcheck(bundles: dict[str, Path]) -> None:
    scripts = [str(p) for b in bundles.values()
               for p in [b / "install.sh", *sorted((b / "scripts").glob("*.sh"))]]
    out = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_executable_bits(bundles: dict[str, Path]) -> None:
    for bundle in bundles.values():
        for rel in ("install.sh", "scripts/healthcheck.sh", "scripts/restart-all.sh"):
            assert (bundle / rel).stat().st_mode & stat.S_IXUSR, rel
        assert not (bundle / "MANIFEST.json").stat().st_mode & stat.S_IXUSR


# --- the command ---------------------------------------------------------------------------


def test_cli_writes_a_bundle(mesh: TwoHosts, tmp_path: Path) -> None:
    out = homelab(mesh.root, "bundle", "--host", mesh.inf_host, "--out", str(tmp_path / "b"),
                  "--no-check")
    assert out.returncode == 0, out.stderr
    assert "homelab-ov-server.service" in out.stdout
    assert (tmp_path / "b/install.sh").is_file()


def test_cli_unknown_host_is_exit_2(mesh: TwoHosts, tmp_path: Path) -> None:
    out = homelab(mesh.root, "bundle", "--host", "nope", "--out", str(tmp_path / "b"))
    assert out.returncode == 2
    assert "unknown host 'nope'" in out.stderr and mesh.inf_host in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "b").exists()


def test_cli_refuses_a_non_empty_dir_without_force(mesh: TwoHosts, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = homelab(mesh.root, "bundle", "--host", mesh.inf_host, "--out", str(tmp_path), "--no-check")
    assert out.returncode == 2
    assert "not empty" in out.stderr and "--force" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_force_replaces_a_previous_bundle_and_keeps_other_files(mesh: TwoHosts,
                                                                    tmp_path: Path) -> None:
    args = ["bundle", "--out", str(tmp_path), "--no-check", "--force"]
    assert homelab(mesh.root, *args, "--host", mesh.gw_host).returncode == 0
    (tmp_path / "notes.txt").write_text("mine")
    out = homelab(mesh.root, *args, "--host", mesh.inf_host)
    assert out.returncode == 0, out.stderr
    assert _names(tmp_path, "systemd") == {"homelab-ov-server.service"}  # gateway units removed
    assert not (tmp_path / "config").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_out_is_a_file_is_exit_2(mesh: TwoHosts, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    out = homelab(mesh.root, "bundle", "--host", mesh.inf_host, "--out", str(tmp_path / "f"))
    assert out.returncode == 2 and "not a directory" in out.stderr


def test_cli_refuses_an_unapproved_lan_bind(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "repo")
    make_two_hosts(root, GW_ADDR, INF_ADDR, approve=False)
    out = homelab(root, "bundle", "--host", "inference", "--out", str(tmp_path / "b"))
    assert out.returncode == 1
    assert "HL301" in out.stdout and "ov-server" in out.stdout
    assert not (tmp_path / "b").exists()


def test_check_passes_two_hosts_and_fails_without_the_approval(tmp_path: Path) -> None:
    """`homelab render` + `homelab check` accept the two-host mesh (no violation the unmodified
    checkout does not already have); dropping the LAN approval fails with HL301 on ov-server."""
    baseline_root = copy_checkout(tmp_path / "baseline")
    baseline = homelab(baseline_root, "check", "--json")
    assert baseline.returncode in (0, 1), baseline.stderr
    before = {(v["path"], v["code"], v["message"]) for v in json.loads(baseline.stdout)["violations"]}

    root = copy_checkout(tmp_path / "repo")
    make_two_hosts(root, GW_ADDR, INF_ADDR)
    rendered = homelab(root, "render")
    assert rendered.returncode == 0, rendered.stderr
    check = homelab(root, "check", "--json")
    after = {(v["path"], v["code"], v["message"]) for v in json.loads(check.stdout)["violations"]}
    assert after <= before, sorted(after - before)
    assert check.returncode == (1 if after else 0)

    drop_approval(root)
    broken = homelab(root, "check")
    assert broken.returncode == 1
    hl301 = [line for line in broken.stdout.splitlines() if " HL301 " in line]
    assert hl301 and all("ov-server" in line for line in hl301), broken.stdout
    assert "LAN-0900 is not in mesh/approvals.yaml" in hl301[0]


def test_a_host_without_services_gets_a_valid_empty_bundle(mesh: TwoHosts, tmp_path: Path) -> None:
    root = Path(shutil.copytree(mesh.root, tmp_path / "repo"))
    mesh_file = root / "mesh/mesh.yaml"
    mesh_file.write_text(mesh_file.read_text().replace(
        "hosts:\n", "hosts:\n- {name: spare, address: 10.250.77.9, role: not used yet}\n", 1))
    out = homelab(root, "bundle", "--host", "spare", "--out", str(tmp_path / "b"), "--no-check")
    assert out.returncode == 0, out.stderr
    bundle = tmp_path / "b"
    assert not (bundle / "systemd").exists()
    (tmp_path / "root").mkdir()
    run = subprocess.run([str(bundle / "install.sh"), "--root", str(tmp_path / "root")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "note: no systemd units for host spare" in run.stdout
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", str(bundle / "install.sh")], capture_output=True,
                              text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout
