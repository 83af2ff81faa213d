"""meshkit.view: load the rendered view; every error names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshkit.view import FORMAT, ViewError, load_view, parse

REAL_VIEW = Path(__file__).resolve().parents[3] / "mesh" / "view.json"


def doc() -> dict:
    return json.loads(REAL_VIEW.read_text())


def test_the_checkouts_view_loads_typed() -> None:
    view = load_view(REAL_VIEW)
    assert view.gateway_url == "http://127.0.0.1:4000/v1" and view.gateway_service == "litellm-orch"
    ov = view.services["ov-server"]
    assert (ov.kind, ov.host, ov.port, ov.health.expect_status) == ("backend", "local", 4010, 200)
    assert "jerry-tiny" in {r.name for r in view.routes if r.service == "ov-server"}
    assert {"list_models", "service_health", "topology"} <= {t.name for t in view.mcp["mesh-status"].tools}
    assert view.never_call_owner("http://localhost:4010/v1").owner == "backend ov-server"
    assert view.never_call_owner(view.gateway_url) is None
    target = ov.health.target(ov, local=True)
    assert (target.service, target.url, target.host) == ("ov-server", ov.health.local_url, "local")


def test_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMELAB_MESH_VIEW", str(REAL_VIEW))
    assert load_view().path == REAL_VIEW
    monkeypatch.delenv("HOMELAB_MESH_VIEW")
    with pytest.raises(ViewError, match="HOMELAB_MESH_VIEW is not set"):
        load_view()


def test_auth_env_token_comes_from_the_given_environment() -> None:
    data = doc()
    svc = next(s for s in data["services"] if s["health"])
    svc["health"]["auth_env"] = "K"
    view = parse(data, Path("v.json"))
    s = view.services[svc["name"]]
    assert s.health.target(s, env={"K": "t"}).headers == {"Authorization": "Bearer t"}
    assert s.health.target(s, env={}).headers == {}


def _set(path: list, value: object):
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set(["format"], FORMAT + 1), f"v.json: format: this meshkit reads format {FORMAT}, the view is format {FORMAT + 1}"),
    (_set(["gateway"], KeyError), "v.json: gateway: missing"),
    (_set(["services", 0, "port"], "80"), "v.json: services[0].port: expected an integer, got a string"),
    (_set(["services", 0, "port"], True), "v.json: services[0].port: expected an integer, got true/false"),
    (_set(["services", 1, "upstreams"], [1]), "v.json: services[1].upstreams[0]: expected a string, got an integer"),
    (_set(["never_call", 0, "address"], None), "v.json: never_call[0].address: expected a string, got null"),
    (_set(["hosts"], {}), "v.json: hosts: expected a list, got an object"),
])
def test_invalid_views_name_file_and_field(change, message: str) -> None:
    data = doc()
    change(data)
    with pytest.raises(ViewError) as exc:
        parse(data, Path("v.json"))
    assert str(exc.value).startswith(message)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ViewError, match="nope.json: not found .*homelab render"):
        load_view(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1,\n oops}')
    with pytest.raises(ViewError, match=r"bad.json:2: not valid JSON"):
        load_view(bad)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ViewError, match="list.json: top level: expected an object, got a list"):
        load_view(tmp_path / "list.json")
