"""The three tools through the SDK client, in-process, over a fake mesh and the real repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from meshkit.view import ViewError, load_view

from mesh_status.server import build_server

REAL_VIEW = Path(__file__).resolve().parents[3] / "mesh" / "view.json"

pytestmark = pytest.mark.anyio


def server_for(view: Path):
    return build_server(lambda: load_view(view))


async def call(server, tool: str, **args):
    async with Client(server) as client:
        return await client.call_tool(tool, args)


def rows(result):
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    return data["result"] if "result" in data and isinstance(data["result"], list) else data


async def test_tools_listed(fake_view_file):
    async with Client(server_for(fake_view_file)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"list_models", "service_health", "topology"}
    assert "service" in tools["service_health"].input_schema["properties"]


async def test_list_models(fake_view_file):
    models = rows(await call(server_for(fake_view_file), "list_models"))
    by_name = {m["name"]: m for m in models}
    assert [m["name"] for m in models] == ["jerry-big", "jerry-gone", "jerry-small", "jerry-small-moa"]
    assert by_name["jerry-small"] | {"port": 0} == {
        "name": "jerry-small", "kind": "model", "service": "be", "host": "local", "address": "127.0.0.1",
        "port": 0, "upstream_id": "small-v1", "fallbacks": ["jerry-big"]}
    moa = by_name["jerry-small-moa"]
    assert (moa["kind"], moa["service"], moa["upstream_id"], moa["target"]) == ("alias", "opt", "moa-jerry-small", "jerry-small")


async def test_topology(fake_view_file, probe_port):
    topo = rows(await call(server_for(fake_view_file), "topology"))
    assert topo["mesh"] == "testmesh"
    assert [h["name"] for h in topo["hosts"]] == ["local", "nas"]
    svcs = {s["name"]: s for s in topo["services"]}
    assert set(svcs) == {"gw", "be", "opt", "tool", "gone", "cli"}
    assert svcs["gw"]["exposure"] == "lan" and svcs["gw"]["bind"] == "0.0.0.0"
    assert svcs["gw"]["url"] == f"http://127.0.0.1:{probe_port}"  # wildcard bind -> host address
    assert svcs["cli"]["port"] is None and svcs["cli"]["url"] is None
    assert svcs["be"]["exposure"] == "localhost"


async def test_service_health_all(fake_view_file, probe_port):
    health = {r["service"]: r for r in rows(await call(server_for(fake_view_file), "service_health"))}
    assert set(health) == {"gw", "be", "opt", "tool", "gone"}  # cli has no listening socket
    assert health["gw"]["healthy"] is True and health["gw"]["status"] == 200
    assert health["gw"]["url"] == f"http://127.0.0.1:{probe_port}/ok"
    assert health["be"]["healthy"] is False and health["be"]["error"] == "expected HTTP 200, got 503"
    assert health["opt"]["healthy"] is False and health["opt"]["error"] == "timed out after 0.3 s"
    assert health["tool"]["healthy"] is False and "body does not contain" in health["tool"]["error"]
    assert health["tool"]["required"] is False
    assert health["gone"]["healthy"] is False and health["gone"]["error"].startswith("connection refused by 127.0.0.1:")


async def test_service_health_one_and_by_model(fake_view_file):
    server = server_for(fake_view_file)
    assert [r["service"] for r in rows(await call(server, "service_health", service="gw"))] == ["gw"]
    # "is jerry-small up?": a model name probes the service that serves it.
    only = rows(await call(server, "service_health", service="jerry-small"))
    assert [(r["service"], r["healthy"]) for r in only] == [("be", False)]


async def test_unknown_service_is_a_tool_error(fake_view_file):
    r = await call(server_for(fake_view_file), "service_health", service="nope")
    assert r.is_error and "unknown service name 'nope'" in r.content[0].text and "gw" in r.content[0].text


async def test_service_without_health_endpoint(fake_view_file):
    r = await call(server_for(fake_view_file), "service_health", service="cli")
    assert r.is_error and "no HTTP health endpoint" in r.content[0].text


@pytest.mark.parametrize("breakage, message", [
    (lambda path: path.write_text("{not json"), "view.json:1: not valid JSON"),
    (lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "format": 2})),
     "format: this meshkit reads format 1, the view is format 2"),
    (lambda path: path.write_text(path.read_text().replace('"port": null', '"port": "x"')),
     "services[1].port: expected an integer, got a string"),
    (lambda path: path.unlink(), "view.json: not found"),
])
async def test_unreadable_view_is_a_tool_error(fake_view_file, breakage, message):
    breakage(fake_view_file)
    for tool in ("list_models", "topology", "service_health"):
        r = await call(server_for(fake_view_file), tool)
        assert r.is_error and "mesh view unreadable" in r.content[0].text and message in r.content[0].text


def test_real_view():
    """The checkout's own rendered view: jerry-tiny is served by ov-server on host local."""
    view = load_view(REAL_VIEW)
    assert {"litellm-orch", "ov-server", "web-fetch", "mesh-status", "tiny-agents"} <= set(view.services)
    from mesh_status.views import list_models
    tiny = {m["name"]: m for m in list_models(view)}["jerry-tiny"]
    assert (tiny["service"], tiny["host"], tiny["address"], tiny["port"]) == ("ov-server", "local", "127.0.0.1", 4010)


def test_view_comes_from_the_environment(fake_view_file, monkeypatch):
    monkeypatch.setenv("HOMELAB_MESH_VIEW", str(fake_view_file))
    assert load_view().mesh == "testmesh"
    monkeypatch.delenv("HOMELAB_MESH_VIEW")
    with pytest.raises(ViewError, match="HOMELAB_MESH_VIEW is not set"):
        load_view()


def summary(result) -> str:
    """The plain-language first text block; the second is the rows as JSON (== structuredContent)."""
    assert not result.is_error, result.content[0].text
    assert len(result.content) == 2
    data = result.structured_content
    assert json.loads(result.content[1].text) == (data["result"] if list(data) == ["result"] else data)
    return result.content[0].text


async def test_results_open_with_a_sentence_that_answers(fake_view_file, probe_port):
    server = server_for(fake_view_file)
    gw = summary(await call(server, "service_health", service="gateway"))
    assert gw.startswith("The gateway is up: it is gw (the gateway, host local), which is up (")
    assert f"http://127.0.0.1:{probe_port}/ok answered 200 in " in gw
    small = summary(await call(server, "service_health", service="jerry-small"))
    assert small.startswith("jerry-small is DOWN: it is be (serves jerry-big, jerry-small, host local)")
    assert "expected HTTP 200, got 503" in small
    every = summary(await call(server, "service_health"))
    assert every.startswith("4 of 5 services DOWN: ") and "tool (host local) is DOWN (optional)" in every
    models = summary(await call(server, "list_models"))
    assert models.startswith("The gateway gw serves 4 models: jerry-big (served by be on host local at 127.0.0.1:")
    assert "jerry-small-moa (moa over jerry-small, via opt on host local" in models
    topo = summary(await call(server, "topology"))
    assert topo.startswith("The mesh is named testmesh. It has 2 hosts: local (address 127.0.0.1, role everything); "
                           "nas (address 192.0.2.10, role storage box). The gateway is the service gw")
    assert "6 services: be (backend, host local, http://127.0.0.1:" in topo and "cli (client, host local)" in topo


async def test_health_schema_lists_the_names_it_accepts(fake_view_file):
    """A client constraining arguments to the schema (ov-server) can only send a valid name."""
    async with Client(server_for(fake_view_file)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        prop = tools["service_health"].input_schema["properties"]["service"]
        names = prop["anyOf"][0]["enum"]
        assert set(names) == {"gw", "be", "opt", "tool", "gone", "jerry-small", "jerry-big", "jerry-small-moa",
                              "jerry-gone", "gateway"}
        data = json.loads(fake_view_file.read_text())  # re-read on every listing
        data["services"] = [s for s in data["services"] if s["name"] != "gone"]
        fake_view_file.write_text(json.dumps(data))
        prop = {t.name: t for t in (await client.list_tools()).tools}["service_health"].input_schema
        assert "gone" not in prop["properties"]["service"]["anyOf"][0]["enum"]


async def test_an_external_backend_is_said_to_be_external(fake_view_file):
    """A backend the mesh does not run (view `managed: external`): its health answer says so, so
    "DOWN" reads as "start it where it runs", and topology carries the field."""
    data = json.loads(fake_view_file.read_text())
    for svc in data["services"]:
        svc["managed"] = "external" if svc["name"] == "gone" else "mesh"
    fake_view_file.write_text(json.dumps(data))
    server = server_for(fake_view_file)
    gone = summary(await call(server, "service_health", service="jerry-gone"))
    assert gone.startswith("jerry-gone is DOWN: it is gone (serves jerry-gone, host local, external, "
                           "not run by the mesh), which is DOWN ("), gone
    assert "connection refused" in gone
    be = summary(await call(server, "service_health", service="be"))
    assert "external" not in be
    managed = {s["name"]: s["managed"] for s in rows(await call(server, "topology"))["services"]}
    assert managed["gone"] == "external" and managed["be"] == "mesh"
