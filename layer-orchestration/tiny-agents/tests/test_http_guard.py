"""HTTP mode's front door, in-process (no network): who may call it (Host, Origin, key) and what
a bad body gets. Every refusal is JSON in OpenAI's shape with the right 4xx, never a plain-text
500. The real server process, behind a real gateway, is exercised in test_e2e_gateway.py."""

from __future__ import annotations

import httpx
import openai
import pytest

from tiny_agents.config import AgentConfig
from tiny_agents.httpapi import build_app
from tiny_agents.httpguard import host_is_loopback, origin_is_loopback

pytestmark = pytest.mark.anyio

KEY = "test-serve-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json"}
SECRET_PATH = "/opt/secret/site-packages/thing.py"


class ExplodingToolbox:
    """Stands in for the MCP side (not under test): the first thing a run touches raises."""

    tools: dict = {}

    def openai_tools(self):
        raise RuntimeError(f"boom in {SECRET_PATH}")


def app():
    cfg = AgentConfig(api_base="http://127.0.0.1:9/v1", api_key="k", model="jerry-x", gateway="http://127.0.0.1:9/v1")
    client = openai.AsyncOpenAI(base_url=cfg.api_base, api_key="k", max_retries=0)
    return build_app(cfg, ExplodingToolbox(), client, key=KEY)


@pytest.fixture
async def http():
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:4030") as client:
        yield client


def assert_error(r: httpx.Response, status: int, param: str | None = "unset") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param != "unset":
        assert err["param"] == param, err
    return err


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4030", "127.0.0.1.evil.example", "10.0.0.5:4030",
                                  "localhost.:4030", "127.0.0.1:x", ""])
async def test_foreign_host_is_421_on_every_route(http, host):
    for method, path in [("GET", "/health"), ("POST", "/run")]:
        r = await http.request(method, path, headers={"Host": host, **AUTH, **JSON}, json={"question": "hi"})
        assert_error(r, 421, "Host")


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:4030", "null", "http://127.0.0.1.evil.example",
                                    "file://", "http://10.0.0.5:4030"])
async def test_foreign_origin_is_403_even_with_the_key(http, origin):
    r = await http.post("/run", headers={"Origin": origin, **AUTH, **JSON}, json={"question": "hi"})
    assert_error(r, 403, "Origin")
    assert_error(await http.get("/health", headers={"Origin": origin}), 403, "Origin")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-0123456789abcdef"},
                                     {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY},
                                     {"Authorization": f"Bearer {KEY[:-1]}"}, {"X-Api-Key": KEY}])
async def test_run_needs_the_key(http, headers):
    err = assert_error(await http.post("/run", headers={**headers, **JSON}, json={"question": "hi"}), 401, "Authorization")
    assert err["code"] == "invalid_api_key"


async def test_health_is_open_on_loopback_names(http):
    for host in ["127.0.0.1:4030", "localhost:4030", "[::1]:4030", "LOCALHOST"]:
        r = await http.get("/health", headers={"Host": host, "Origin": "http://localhost:4030"})
        assert r.status_code == 200 and r.json()["status"] == "ok", (host, r.text)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp"])
async def test_cross_site_simple_bodies_are_refused(http, content_type):
    """A cross-site form can POST text/plain (and the two others) without a CORS preflight."""
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    assert_error(await http.post("/run", headers=headers, content=b'{"question": "hi"}'), 415, "Content-Type")


@pytest.mark.parametrize("body, param, words", [
    (b"[" * 100_000 + b"]" * 100_000, None, "nested too deeply"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, None, "nested too deeply"),
    (b"not json", None, "must be JSON"),
    (b"\xff\xfe\xfa", None, "must be JSON"),
    (b"", None, "must be JSON"),
    (b"[1, 2]", None, "JSON object, got list"),
    (b'"question"', None, "JSON object, got str"),
    (b"NaN", None, "JSON object, got float"),
    (b'{"question": NaN}', "question", "non-empty string"),
    (b'{"question": "  "}', "question", "non-empty string"),
    (b'{"question": ["hi"]}', "question", "non-empty string"),
    (b'{"question": "hi", "max_steps": true}', "max_steps", "integer from 1 to 50"),
    (b'{"question": "hi", "max_steps": 2.0}', "max_steps", "integer from 1 to 50"),
    (b'{"question": "hi", "max_steps": 51}', "max_steps", "integer from 1 to 50"),
    (b'{"question": "hi", "max_steps": ' + b"9" * 5000 + b"}", None, "must be JSON"),
    (b'{"question": "hi", "max_step": 3}', "max_step", "unknown field 'max_step'"),
])
async def test_body_mistakes_are_400_in_openai_shape(http, body, param, words):
    err = assert_error(await http.post("/run", headers={**AUTH, **JSON}, content=body), 400, param)
    assert words in err["message"]


async def test_oversized_body_is_413_before_it_is_read(http):
    big = b'{"question": "' + b"x" * (2 << 20) + b'"}'
    assert_error(await http.post("/run", headers={**AUTH, **JSON}, content=big), 413)

    async def chunks():  # no Content-Length: the limit applies while reading
        yield b'{"question": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'
    assert_error(await http.post("/run", headers={**AUTH, **JSON}, content=chunks()), 413)


async def test_unknown_routes_and_methods_are_json(http):
    assert_error(await http.get("/nope", headers=AUTH), 404)
    assert_error(await http.get("/run", headers=AUTH), 405)
    assert_error(await http.get("/nope"), 401)  # no key, no route discovery


async def test_unexpected_failure_is_a_json_500_without_details(http):
    r = await http.post("/run", headers={**AUTH, **JSON}, json={"question": "hi"})
    err = assert_error(r, 500)
    assert err["type"] == "server_error" and SECRET_PATH not in r.text and "Traceback" not in r.text


def test_host_and_origin_rules():
    assert host_is_loopback("127.0.0.1:4030") and host_is_loopback("[::1]") and host_is_loopback("LocalHost:1")
    assert not host_is_loopback(None) and not host_is_loopback("[::1]x") and not host_is_loopback("127.0.0.2")
    assert origin_is_loopback("http://127.0.0.1:4030") and origin_is_loopback("http://[::1]:5") and origin_is_loopback("http://localhost")
    assert not origin_is_loopback("http://localhost:99999") and not origin_is_loopback("http://localhost:4030/x")
    assert not origin_is_loopback("ws://localhost") and not origin_is_loopback("null")


def test_serve_refuses_to_start_without_a_key(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    for value in ("", "short"):
        env = {"PATH": "/usr/bin:/bin", "HOMELAB_MESH_VIEW": str(REPO / "mesh" / "view.json"), "TINYAGENTS_SERVE_KEY": value}
        proc = subprocess.run([sys.executable, "-m", "tiny_agents.cli", "serve", "--no-tools"], env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc.stderr
        assert "TINYAGENTS_SERVE_KEY" in proc.stderr and "Traceback" not in proc.stderr
