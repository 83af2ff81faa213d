"""External backends (contract `external`, no `run`): `homelab new backend --external URL` writes
a contract that passes `check` at once and is wired like every backend; the rules that cannot
apply are skipped; bad contracts and bad URLs are clear errors that write nothing. The runtime
side (up, health, status, mesh-status against a real ov-server) is tests/flow/test_external_backend.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from meshkit.view import load_view as load_view_file
from conftest import edit, git, violations
from test_bad_input import run_cli

from homelab.load.repo import load_repo
from homelab.ordering import start_order
from homelab.render.view import SCHEMA
from homelab.runtime.hosts import externals, services_on
from homelab.runtime.programs import select
from homelab.testrun import suites

EXT = "layer-inference/ext/SERVICE_SPEC.md"
GW = "layer-gateway/gw/SERVICE_SPEC.md"
URL = "http://127.0.0.1:11434/v1"


def front(mesh: Path, rel: str) -> dict:
    return yaml.safe_load((mesh / rel).read_text().split("---")[1])


def add_external(mesh: Path, *extra: str) -> str:
    code, out, err = run_cli(mesh, "new", "backend", "ext", "--external", URL, "--model",
                             "jerry-llama=llama3.2:1b", "--health-path", "/",
                             "--health-body", "Ollama is running", "--managed-by",
                             "Ollama on this box", *extra)
    assert code == 0, out + err
    return out


def test_new_external_is_a_contract_only_backend_wired_everywhere(mesh: Path) -> None:
    out = add_external(mesh, "--fallback", "jerry-small", "--gateway-auth")
    assert "created layer-inference/ext/ (3 files)" in out
    assert sorted(p.name for p in (mesh / "layer-inference/ext").iterdir()) == \
        ["AGENTS.md", "ARCHITECTURE.md", "SERVICE_SPEC.md"]  # no server code, no uv project
    assert violations(mesh) == []
    assert violations(mesh, base="HEAD") == []
    spec = front(mesh, EXT)
    assert "run" not in spec and "test" not in spec and "systemd" not in spec
    assert spec["external"] == {"managed_by": "Ollama on this box", "api_path": "/v1"}
    assert (spec["host"], spec["bind"], spec["port"], spec["exposure"]) == \
        ("box", "127.0.0.1", 11434, "localhost")
    assert spec["health"] == {"path": "/", "expect_status": 200, "expect_body": "Ollama is running"}
    assert spec["models"] == [{"name": "jerry-llama", "upstream_id": "llama3.2:1b",
                               "fallbacks": ["jerry-small"]}]
    ledger = yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]
    assert {"host": "box", "port": 11434, "service": "ext"} in \
        [{k: p[k] for k in ("host", "port", "service")} for p in ledger]
    gw = front(mesh, GW)
    assert "ext" in gw["upstreams"] and "ext" not in gw.get("run", {}).get("after", [])
    assert any(e["name"] == "EXT_API_KEY" and e["secret"] for e in gw["env"])
    router = yaml.safe_load((mesh / "layer-gateway/gw/config/router.yaml").read_text())
    entry = next(m for m in router["model_list"] if m["model_name"] == "jerry-llama")
    assert entry["litellm_params"] == {"model": "openai/llama3.2:1b", "api_base": URL,
                                       "api_key": "os.environ/EXT_API_KEY"}
    assert {"jerry-llama": ["jerry-small"]} in router["router_settings"]["fallbacks"]
    health = (mesh / "platform/ops/scripts/healthcheck.sh").read_text()
    assert '"ext|box|http://127.0.0.1:11434/|200|Ollama is running|required||3"' in health
    assert "homelab-ext" not in (mesh / "platform/ops/scripts/restart-all.sh").read_text()
    assert not (mesh / "platform/ops/systemd/homelab-ext.service").exists()
    topology = (mesh / "docs/foundation/topology.md").read_text()
    assert "| ext | backend (external) | layer-inference/ext | box | 127.0.0.1 | 11434 |" in topology
    dossier = (mesh / "docs/PLATFORM_DOSSIER.md").read_text()
    assert "| none: run by Ollama on this box |" in dossier
    view = json.loads((mesh / "mesh/view.json").read_text())
    jsonschema.validate(view, SCHEMA)  # the view schema says what `managed` may be
    assert load_view_file(mesh / "mesh/view.json").services["ext"].is_external
    row = next(s for s in view["services"] if s["name"] == "ext")
    assert row["managed"] == "external" and row["url"] == "http://127.0.0.1:11434"
    assert {s["name"]: s["managed"] for s in view["services"]}["gw"] == "mesh"
    assert {"address": "127.0.0.1", "port": 11434, "service": "ext", "kind": "backend"} in \
        view["never_call"]  # clients must not call it: HL401 and the view agree
    repo = load_repo(mesh)
    assert "ext" not in [s.name for s in suites(repo)]  # nothing to test: not our code
    assert [s.name for s in externals(repo)] == ["ext"]
    assert "ext" not in [s.name for s in services_on(repo, "box")]  # `up` never starts it
    assert "ext" not in [s.name for s in select(repo, "box")]
    assert "ext" in [s.name for s in start_order(list(repo.services.values()))]


def test_a_client_naming_the_external_address_breaks_hl401(mesh: Path) -> None:
    add_external(mesh)
    git(mesh, "add", "-A")
    edit(mesh, "layer-orchestration/agent/SERVICE_SPEC.md", "default_api_base: http://127.0.0.1:4000/v1",
         "default_api_base: http://127.0.0.1:11434/v1")
    found = [v for v in violations(mesh) if v.code == "HL401"]
    assert found and "the address of ext" in found[0].message


def test_a_lan_external_needs_an_approval_like_any_lan_service(mesh: Path) -> None:
    edit(mesh, "mesh/mesh.yaml", "hosts:\n", "hosts:\n  - name: mac\n    address: 192.168.7.20\n"
         "    role: Ollama on the Mac\n")
    git(mesh, "add", "-A")
    git(mesh, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a Mac")
    before = git(mesh, "status", "--porcelain")
    code, _, err = run_cli(mesh, "new", "backend", "mac-llm", "--external",
                           "http://192.168.7.20:11434/v1")
    assert code == 2 and "--external: binding 192.168.7.20 exposes mac-llm on the LAN" in err, err
    assert git(mesh, "status", "--porcelain") == before
    code, out, err = run_cli(mesh, "new", "backend", "mac-llm", "--external",
                             "http://192.168.7.20:11434", "--approved-by", "alice", "--reviewer",
                             "bob", "--reason", "the Mac serves the mesh")
    assert code == 0, out + err
    spec = front(mesh, "layer-inference/mac-llm/SERVICE_SPEC.md")
    assert (spec["host"], spec["exposure"], spec["approval"]) == ("mac", "lan", "LAN-0002")
    assert violations(mesh) == []
    router = yaml.safe_load((mesh / "layer-gateway/gw/config/router.yaml").read_text())
    entry = next(m for m in router["model_list"] if m["model_name"] == "jerry-mac-llm")
    assert entry["litellm_params"]["api_base"] == "http://192.168.7.20:11434/v1"


@pytest.mark.parametrize(("args", "expected"), [
    (("--external", "ftp://127.0.0.1:1/v1"), "--external: 'ftp://127.0.0.1:1/v1': expected http://ADDRESS:PORT[/v1]"),
    (("--external", "http://127.0.0.1/v1"), "names no port; give it explicitly"),
    (("--external", "http://127.0.0.1:99999"), "--external: 'http://127.0.0.1:99999' is not a URL"),
    (("--external", "http://gpu-box:8000/v1"), "'gpu-box' is not an IP address"),
    (("--external", "http://10.9.8.7:8000/v1"), "10.9.8.7 is not the address of a host in mesh/mesh.yaml"),
    (("--external", "http://127.0.0.1:4000/v1"), "box:4000 is already in mesh/ports.yaml (gw, active)"),
    (("--external", "http://127.0.0.1:4009/v1"), "box:4009 is already in mesh/ports.yaml (old-thing, retired)"),
    (("--external", "http://user:pw@127.0.0.1:8000/v1"), "no user, query or fragment"),
    (("--external", "http://127.0.0.1:8000/v1 x"), "API path '/v1 x'"),
    (("--external", URL, "--port", "5000"), "--port: comes from --external URL"),
    (("--external", URL, "--host", "nowhere"), "--host: unknown host 'nowhere'"),
    (("--external", URL, "--health-path", "health"), "--health-path: 'health': a path starting with /"),
    (("--external", URL, "--model", "llama3"), "public name 'llama3' does not match the mesh pattern"),
    (("--external", URL, "--model", "jerry-small"), "public name 'jerry-small' is already served"),
    (("--health-path", "/"), "--health-path: only with --external URL"),
])
def test_bad_external_input_is_a_clear_error_and_writes_nothing(mesh: Path, args: tuple[str, ...],
                                                                 expected: str) -> None:
    before = git(mesh, "status", "--porcelain")
    code, out, err = run_cli(mesh, "new", "backend", "ext", *args)
    assert code == 2, out + err
    assert expected in err, err
    assert "Traceback" not in out + err
    assert git(mesh, "status", "--porcelain") == before


def test_only_a_backend_is_external(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "new", "client", "ext", "-d", "A client.", "--external", URL)
    assert code == 2 and "--external: only a backend can be external, not client" in err


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("external: {", "run: {command: [ollama, serve]}\nexternal: {",
     ":15: run: Value error, `run` and `external` exclude each other"),
    ("external: {", "test: {command: [pytest]}\nexternal: {",
     ":15: test: Value error, `test` does not apply to an external backend"),
    ("external: {managed_by: Ollama on this box, api_path: /v1}", "",
     "(document): Value error, `run` is required"),
    ("api_path: /v1}", "api_path: /v1, restart: true}", "external.restart: unknown field"),
    ("api_path: /v1}", "api_path: v1}", "external.api_path: String should match pattern"),
    ("api_path: /v1}", "api_path: /v1, wait_s: 900}", "external.wait_s: Input should be less than or equal to 600"),
    ("managed_by: Ollama on this box", "managed_by: ''", "external.managed_by: String should have at least 1 character"),
    ("health: {", "metrics: {path: /metrics}\nhealth: {", None),
])
def test_broken_external_contract_names_the_field(mesh: Path, old: str, new: str,
                                                  expected: str | None) -> None:
    add_external(mesh)
    edit(mesh, EXT, old, new)
    before = git(mesh, "status", "--porcelain")
    code, out, err = run_cli(mesh, "check")
    if expected is None:  # metrics on an external backend is fine: it is scraped like any
        assert code in (0, 1), out + err
        return
    assert code == 2, out + err
    assert f"{EXT}" in err and expected in err, err
    assert git(mesh, "status", "--porcelain") == before


def test_external_without_health_or_port_is_refused(mesh: Path) -> None:
    add_external(mesh)
    edit(mesh, EXT, "health: {path: /, expect_status: 200, expect_body: Ollama is running}\n", "")
    code, _, err = run_cli(mesh, "check")
    assert code == 2 and "an external backend needs `bind`, `port` and `health`" in err, err


def test_an_external_backend_keeps_hl501_on_its_own_paths(mesh: Path) -> None:
    add_external(mesh)
    edit(mesh, EXT, "  - {method: GET, path: /v1/models}\n", "")
    found = [v for v in violations(mesh) if v.code == "HL501"]
    assert [v.message for v in found] == ["backend ext does not declare GET /v1/models"]


def test_rm_removes_an_external_backend(mesh: Path) -> None:
    add_external(mesh)
    git(mesh, "add", "-A")
    git(mesh, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ext")
    code, out, err = run_cli(mesh, "rm", "ext", "--yes")
    assert code == 0, out + err
    assert "removed ext; the mesh no longer routes to it (it keeps running where it runs: " \
        "Ollama on this box)" in out
    assert not (mesh / "layer-inference/ext").exists()
    assert "ext" not in front(mesh, GW)["upstreams"]
    assert violations(mesh) == []


@pytest.mark.parametrize("command", [("start", "ext"), ("stop", "ext"), ("restart", "ext"),
                                     ("up", "--only", "ext"), ("up", "--with", "ext")])
def test_the_mesh_does_not_start_or_stop_an_external_backend(mesh: Path,
                                                             command: tuple[str, ...]) -> None:
    add_external(mesh)
    code, out, err = run_cli(mesh, *command)
    assert code == 2, out + err
    assert "ext: external, not run by the mesh (run by Ollama on this box); start or stop it " \
        "where it runs" in err, err


def test_logs_of_an_external_backend_say_where_they_are(mesh: Path) -> None:
    add_external(mesh)
    code, out, err = run_cli(mesh, "logs", "ext")
    assert code == 1 and "ext is external, not run by the mesh: its log is where it runs " \
        "(Ollama on this box)" in err, out + err


@pytest.mark.parametrize(("name", "expected"), [
    ("nope", "--skip nope: no such service (external backends: ext)"),
    ("ov", "--skip ov: not an external backend (the mesh runs it; `--only` chooses what starts) "
           "(external backends: ext)"),
])
def test_up_skip_names_only_external_backends(mesh: Path, name: str, expected: str) -> None:
    add_external(mesh)
    code, out, err = run_cli(mesh, "up", "--skip", name)
    assert code == 2 and expected in err, out + err
    assert not (mesh / ".homelab/run/supervisord.conf").exists()  # nothing started
