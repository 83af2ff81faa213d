"""`homelab render`: derived files, idempotent, atomic, hand-written parts preserved."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import edit, git, rerender
from test_bad_input import run_cli

from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.render import plan
from homelab.render.writer import write_all
from meshkit.testing import free_port

ROUTER = "layer-gateway/gw/config/router.yaml"


def test_render_is_idempotent(mesh: Path) -> None:
    code, out, _ = run_cli(mesh, "render")
    assert (code, out) == (0, "")  # quiet when nothing changes
    assert git(mesh, "status", "--porcelain") == ""


def test_render_check_flag_reports_without_writing(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "upstream_id: small-1b", "upstream_id: small-2b")
    before = (mesh / ROUTER).read_text()
    code, out, _ = run_cli(mesh, "render", "--check")
    assert code == 1 and f"would write {ROUTER}" in out
    assert (mesh / ROUTER).read_text() == before


def test_router_keeps_hand_tuned_settings_and_comments(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "upstream_id: small-1b", "upstream_id: small-2b")
    run_cli(mesh, "render")
    text = (mesh / ROUTER).read_text()
    assert "# hand-tuned" in text and "num_retries: 0  # fail fast" in text
    assert "model: openai/small-2b" in text and "small-1b" not in text


def test_router_fallbacks_from_contracts(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "upstream_id: small-1b}",
         "upstream_id: small-1b, fallbacks: [jerry-small-moa]}")
    run_cli(mesh, "render")
    import yaml  # ruamel's safe loader is enough, but PyYAML reads plainer here

    doc = yaml.safe_load((mesh / ROUTER).read_text())
    assert doc["router_settings"]["fallbacks"] == [{"jerry-small": ["jerry-small-moa"]}]
    assert doc["router_settings"]["num_retries"] == 0
    names = [m["model_name"] for m in doc["model_list"]]
    assert names == ["jerry-small", "jerry-small-moa"]
    alias = doc["model_list"][1]["litellm_params"]
    assert alias["model"] == "openai/moa-jerry-small" and alias["api_base"].endswith(
        f":{load_repo(mesh).services['opt'].spec.port}/v1")


def test_doc_prose_outside_markers_is_preserved(mesh: Path) -> None:
    topo = mesh / "docs/foundation/topology.md"
    topo.write_text(topo.read_text().replace("Hand-written intro", "Edited intro"))
    run_cli(mesh, "render")
    assert "Edited intro that render must keep." in topo.read_text()


def test_broken_marker_is_input_error(mesh: Path) -> None:
    topo = mesh / "docs/foundation/topology.md"
    topo.write_text(topo.read_text().replace("<!-- END GENERATED: routes -->", ""))
    code, _, err = run_cli(mesh, "render")
    assert code == 2 and "docs/foundation/topology.md" in err and "'routes'" in err


def test_nothing_half_written_when_a_write_fails(mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "upstream_id: small-1b", "upstream_id: small-2b")
    files = plan.render_all(load_repo(mesh))
    real_fdopen, calls = os.fdopen, []

    def failing_fdopen(fd: int, *a: object, **k: object):  # type: ignore[no-untyped-def]
        calls.append(fd)
        if len(calls) == 2:  # the second staged file fails: the first must not land either
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *a, **k)

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(InputError, match="No space left"):
        write_all(mesh, files)
    assert git(mesh, "status", "--porcelain") == " M layer-inference/ov/SERVICE_SPEC.md\n"
    assert not list(mesh.rglob("*.tmp"))


def test_invalid_router_yaml_writes_nothing(mesh: Path) -> None:
    (mesh / ROUTER).write_text("- not\n- a mapping\n")
    git(mesh, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "broken router")
    code, _, err = run_cli(mesh, "render")
    assert code == 2 and f"{ROUTER}:1: expected a YAML mapping" in err
    assert git(mesh, "status", "--porcelain") == ""


def test_mcp_registry_lists_tools(mesh: Path) -> None:
    import yaml

    reg = yaml.safe_load((mesh / "layer-tools/registry.yaml").read_text())
    server = reg["servers"]["fetcher"]
    assert server["transport"] == "streamable-http"
    assert server["url"].endswith("/mcp") and server["stdio"]["args"][:3] == ["run", "--project", "layer-tools/fetcher"]
    assert set(server["tools"]["fetch"]) == {"description", "inputs", "outputs", "failure_modes"}


def test_env_template_from_contract(mesh: Path) -> None:
    text = (mesh / "layer-gateway/gw/config/env.local.example").read_text()
    assert "GENERATED" in text and "LITELLM_MASTER_KEY=\n" in text
    agent = (mesh / "platform/ops/env/agent.env.example").read_text()
    assert "AGENT_API_BASE=http://127.0.0.1:4000/v1" in agent and "AGENT_API_KEY=\n" in agent


def test_env_template_fills_placeholders_in_defaults(mesh: Path) -> None:
    """A default may name the service's {port} and {host_address} (open-webui's CORS origins)."""
    edit(mesh, "layer-orchestration/agent/SERVICE_SPEC.md", "default: jerry-small,",
         "default: 'http://localhost:{port};http://{host_address}:{port}',")
    rerender(mesh)
    agent = (mesh / "platform/ops/env/agent.env.example").read_text()
    address = load_repo(mesh).host_address("box")
    assert f"AGENT_MODEL=http://localhost:4030;http://{address}:4030\n" in agent


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(mesh: Path, tmp_path: Path) -> None:
    units = sorted((mesh / "platform/ops/systemd").glob("*.service"))
    assert len(units) == 5
    proc = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True,
                          text=True, cwd=tmp_path)
    problems = [l for l in proc.stderr.splitlines() if "homelab-" in l]
    assert proc.returncode == 0 and problems == [], proc.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_scripts_pass_shellcheck(mesh: Path) -> None:
    scripts = [mesh / "platform/ops/scripts/healthcheck.sh", mesh / "platform/ops/scripts/restart-all.sh"]
    proc = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert all(os.access(s, os.X_OK) for s in scripts)


def test_restart_all_dry_run_order(mesh: Path) -> None:
    proc = subprocess.run([str(mesh / "platform/ops/scripts/restart-all.sh"), "--dry-run"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    units = [l.split()[-1] for l in lines if l.startswith("systemctl")]
    # backends first, then the gateway, then the optimizer and tools, then clients
    assert units == ["homelab-ov.service", "homelab-gw.service", "homelab-opt.service",
                     "homelab-fetcher.service", "homelab-agent.service"]
    assert lines[-1].endswith("healthcheck.sh --host box")


def _serve(status: int) -> tuple[http.server.HTTPServer, int]:
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"status":"ok"}')

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_generated_healthcheck_probes_for_real(mesh: Path) -> None:
    up, up_port = _serve(200)
    down_port = free_port()
    script = mesh / "platform/ops/scripts/healthcheck.sh"
    text = script.read_text()
    start, end = text.index("PROBES=("), text.index(")\n", text.index("PROBES=("))
    text = text[:start] + (f'PROBES=(\n  "up|box|http://127.0.0.1:{up_port}/health|200|ok|required||2"\n'
                           f'  "opt|box|http://127.0.0.1:{down_port}/health|200||optional||2"\n') + text[end:]
    script.write_text(text)
    try:
        proc = subprocess.run([str(script), "--json"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # only an optional probe is down
        rows = {r["service"]: r for r in json.loads(proc.stdout)}
        assert rows["up"]["ok"] is True and rows["up"]["status"] == 200
        assert rows["opt"]["ok"] is False and rows["opt"]["status"] == 0 and rows["opt"]["error"]
        script.write_text(text.replace("|optional||2", "|required||2"))
        proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and "SERVICE" in proc.stdout.splitlines()[0]
        assert any(l.startswith("opt") and " no " in l for l in proc.stdout.splitlines())
    finally:
        up.shutdown()


def test_prepare_commands_become_exec_start_pre(mesh: Path, tmp_path: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "run:\n", "run:\n  prepare: [[uv, run, ov, fetch, --port, '{port}']]\n")
    code, _, err = run_cli(mesh, "render")
    assert code == 0, err
    unit = (mesh / "platform/ops/systemd/homelab-ov.service").read_text().splitlines()
    pre = [i for i, line in enumerate(unit) if line.startswith("ExecStartPre=")]
    start = [i for i, line in enumerate(unit) if line.startswith("ExecStart=")]
    port = load_repo(mesh).services["ov"].spec.port
    assert [unit[i] for i in pre] == [f"ExecStartPre=/usr/bin/env uv run ov fetch --port {port}"]
    assert pre[0] < start[0]
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "verify", str(mesh / "platform/ops/systemd/homelab-ov.service")],
                              capture_output=True, text=True, cwd=tmp_path)
        assert [l for l in proc.stderr.splitlines() if "homelab-" in l] == [], proc.stderr
