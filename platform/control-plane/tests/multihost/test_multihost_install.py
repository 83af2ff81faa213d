"""install.sh under a root prefix (DESTDIR-style): no systemd, no real /etc touched."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from .twohost import TwoHosts

HAS_SYSTEMCTL = shutil.which("systemctl") is not None


def install(bundle: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bundle / "install.sh"), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def gw_root(tmp_path: Path) -> Path:
    """A root prefix holding the checkout directory the gateway's units run from."""
    (tmp_path / "opt/homelab-llm/layer-gateway/litellm-orch/config").mkdir(parents=True)
    return tmp_path


def test_installs_units_env_router_scripts_and_enables(mesh: TwoHosts, bundles: dict[str, Path],
                                                        gw_root: Path) -> None:
    out = install(bundles[mesh.gw_host], "--root", str(gw_root))
    assert out.returncode == 0, out.stdout + out.stderr
    unit = gw_root / "etc/systemd/system/homelab-litellm-orch.service"
    assert unit.read_bytes() == (bundles[mesh.gw_host] / "systemd" / unit.name).read_bytes()
    env = gw_root / "etc/homelab-llm/optillm-proxy.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    assert (gw_root / "opt/homelab-llm/layer-gateway/litellm-orch/config/env.local").is_file()
    assert (gw_root / "opt/homelab-llm/layer-gateway/litellm-orch/config/router.yaml").is_file()
    assert os.access(gw_root / "usr/local/lib/homelab-llm/restart-all.sh", os.X_OK)
    assert not (gw_root / "etc/homelab-llm/ov-server.env").exists()  # another host's file
    assert "todo: set LITELLM_MASTER_KEY OPTILLM_PROXY_KEY in /etc/homelab-llm/optillm-proxy.env" \
        in out.stdout
    if HAS_SYSTEMCTL:
        wants = gw_root / "etc/systemd/system/multi-user.target.wants/homelab-litellm-orch.service"
        assert wants.is_symlink()


def test_second_run_changes_nothing_and_never_overwrites_env(mesh: TwoHosts,
                                                             bundles: dict[str, Path],
                                                             gw_root: Path) -> None:
    bundle = bundles[mesh.gw_host]
    assert install(bundle, "--root", str(gw_root)).returncode == 0
    secret = gw_root / "etc/homelab-llm/optillm-proxy.env"
    secret.write_text("LITELLM_MASTER_KEY=sk-mine\nOPTILLM_PROXY_KEY=kept\n")
    before = _tree(gw_root)
    again = install(bundle, "--root", str(gw_root))
    assert again.returncode == 0, again.stderr
    assert _tree(gw_root) == before
    assert "0 created, 0 updated" in again.stdout
    assert "kept     /etc/homelab-llm/optillm-proxy.env" in again.stdout
    todos = [line for line in again.stdout.splitlines() if line.startswith("todo:")]
    assert not any("optillm-proxy.env" in line for line in todos), todos


def test_a_changed_unit_is_updated(mesh: TwoHosts, bundles: dict[str, Path], gw_root: Path) -> None:
    bundle = bundles[mesh.gw_host]
    assert install(bundle, "--root", str(gw_root)).returncode == 0
    unit = gw_root / "etc/systemd/system/homelab-optillm-proxy.service"
    unit.write_text("stale\n")
    out = install(bundle, "--root", str(gw_root))
    assert "updated /etc/systemd/system/homelab-optillm-proxy.service" in out.stdout
    assert unit.read_bytes() == (bundle / "systemd" / unit.name).read_bytes()


def test_dry_run_changes_nothing(mesh: TwoHosts, bundles: dict[str, Path], gw_root: Path) -> None:
    before = _tree(gw_root)
    out = install(bundles[mesh.gw_host], "--dry-run", "--root", str(gw_root))
    assert out.returncode == 0, out.stderr
    assert "would create /etc/systemd/system/homelab-litellm-orch.service" in out.stdout
    assert _tree(gw_root) == before
    assert not (gw_root / "etc").exists()


def test_destdir_env_is_the_root_prefix(mesh: TwoHosts, bundles: dict[str, Path], tmp_path: Path) -> None:
    out = install(bundles[mesh.inf_host], env={"DESTDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "etc/systemd/system/homelab-ov-server.service").is_file()
    assert (tmp_path / "etc/homelab-llm/ov-server.env").is_file()
    # No checkout under the prefix: nothing is written inside the install dir, and it says so.
    assert not (tmp_path / "opt").exists()
    assert "todo: put the repository checkout at /opt/homelab-llm" in out.stdout


def test_gateway_files_wait_for_the_checkout(mesh: TwoHosts, bundles: dict[str, Path],
                                             tmp_path: Path) -> None:
    out = install(bundles[mesh.gw_host], "--root", str(tmp_path))
    assert out.returncode == 0
    assert "skipped  /opt/homelab-llm/layer-gateway/litellm-orch/config/router.yaml" in out.stdout
    assert not (tmp_path / "opt").exists()


def test_a_tampered_bundle_is_refused(mesh: TwoHosts, bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles[mesh.inf_host], bundle)
    unit = bundle / "systemd/homelab-ov-server.service"
    unit.write_text(unit.read_text().replace("--port 4010", "--port 4999"))
    (tmp_path / "root").mkdir()
    out = install(bundle, "--root", str(tmp_path / "root"))
    assert out.returncode == 1
    assert "SHA256SUMS" in out.stderr
    assert not any((tmp_path / "root").iterdir())


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option: --bogus"),
    (["--root", "/nonexistent/homelab-test"], "is not a directory"),
])
def test_bad_options_are_exit_2(mesh: TwoHosts, bundles: dict[str, Path], args: list[str],
                                message: str) -> None:
    out = install(bundles[mesh.inf_host], *args)
    assert out.returncode == 2 and message in out.stderr


def test_help(mesh: TwoHosts, bundles: dict[str, Path]) -> None:
    out = install(bundles[mesh.inf_host], "--help")
    assert out.returncode == 0 and "--dry-run" in out.stdout and mesh.inf_host in out.stdout
