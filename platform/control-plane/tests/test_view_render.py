"""mesh/view.json: rendered from the contracts, valid against its own schema, loadable by meshkit,
and what the view says matches the contracts (addresses, health, routes, MCP registry)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from meshkit.view import parse

from homelab.load.repo import load_repo
from homelab.render.view import SCHEMA, VIEW, VIEW_SCHEMA, render_view, render_view_schema

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["checkout", "synthetic"])
def root(request: pytest.FixtureRequest, mesh: Path) -> Path:
    return REPO if request.param == "checkout" else mesh


def test_the_view_is_valid_against_its_schema_and_loads(root: Path) -> None:
    repo = load_repo(root)
    text = render_view(repo)
    assert text == render_view(repo)  # deterministic
    data = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(data, SCHEMA)
    view = parse(data, root / VIEW)
    assert set(view.services) == set(repo.services)
    for name, svc in repo.services.items():
        seen = view.services[name]
        assert (seen.kind, seen.host, seen.bind, seen.port) == (svc.spec.kind, svc.spec.host,
                                                                svc.spec.bind, svc.spec.port)
        assert (seen.health is None) == (svc.spec.health is None or svc.spec.port is None)
    assert view.gateway_url == repo.mesh.gateway.public_base_url
    backends = {s.name for s in repo.by_kind("backend", "optimizer") if s.spec.port}
    assert {n.service for n in view.never_call} == backends


def test_the_checked_in_files_are_current() -> None:
    repo = load_repo(REPO)
    assert (REPO / VIEW).read_text() == render_view(repo)
    assert (REPO / VIEW_SCHEMA).read_text() == render_view_schema()


@pytest.mark.parametrize("change", [
    lambda d: d.update(format=2),
    lambda d: d["services"][0].update(port="4000"),
    lambda d: d["never_call"].append({"address": "127.0.0.1", "port": 1, "service": "x", "kind": "gateway"}),
    lambda d: d.update(extra=1),
])
def test_the_schema_refuses_invalid_views(change) -> None:  # noqa: ANN001
    data = json.loads(render_view(load_repo(REPO)))
    change(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
