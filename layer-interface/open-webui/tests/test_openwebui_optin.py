"""Open WebUI wired to the gateway.

Always (fast): the contract's env keeps Open WebUI offline and pointed at the gateway.
Opt-in (HOMELAB_TEST_OPENWEBUI=1): install the ~7 GB extra, bring Open WebUI up offline on a
free loopback port against a gateway, and list the gateway's models through Open WebUI's API.
The gateway is a loopback stand-in serving /v1/models, or a running real one when
HOMELAB_TEST_OPENWEBUI_GATEWAY (base URL, e.g. http://127.0.0.1:4000/v1) and
HOMELAB_TEST_OPENWEBUI_KEY are set."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SERVICE_DIR = Path(__file__).resolve().parents[1]
REPO = SERVICE_DIR.parents[1]
OPT_IN = os.environ.get("HOMELAB_TEST_OPENWEBUI") == "1"
STUB_KEY = "sk-openwebui-test"
STUB_MODELS = ["jerry-tiny", "jerry-tiny-moa"]


def contract() -> dict:
    text = (SERVICE_DIR / "SERVICE_SPEC.md").read_text()
    return yaml.safe_load(text.split("---")[1])


def contract_env() -> dict[str, str]:
    return {e["name"]: str(e["default"]) for e in contract()["env"] if e.get("default") is not None}


def test_contract_env_is_offline_and_points_at_the_gateway():
    env = contract_env()
    gateway = yaml.safe_load((REPO / "mesh" / "mesh.yaml").read_text())["gateway"]["public_base_url"]
    assert env["OPENAI_API_BASE_URL"].rstrip("/") == gateway.rstrip("/")
    assert env["OFFLINE_MODE"] == "true" and env["ENABLE_OLLAMA_API"] == "false"
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"  # no local embedding model download
    assert (env["ANONYMIZED_TELEMETRY"], env["DO_NOT_TRACK"], env["SCARF_NO_ANALYTICS"]) == ("false", "true", "true")
    assert contract()["run"]["autostart"] is False  # opt-in: `homelab up --with open-webui`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(1)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def gateway():
    if os.environ.get("HOMELAB_TEST_OPENWEBUI_GATEWAY"):
        yield os.environ["HOMELAB_TEST_OPENWEBUI_GATEWAY"], os.environ.get("HOMELAB_TEST_OPENWEBUI_KEY", ""), None
        return

    async def models(request: Request):
        if request.headers.get("authorization") != f"Bearer {STUB_KEY}":
            return JSONResponse({"error": {"message": "bad key", "type": "auth", "param": None, "code": "401"}}, 401)
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "homelab"} for m in STUB_MODELS]})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/models", models)]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", STUB_KEY, STUB_MODELS
    server.should_exit = True


@pytest.mark.skipif(not OPT_IN, reason="opt-in: HOMELAB_TEST_OPENWEBUI=1 installs open-webui (~7 GB)")
def test_open_webui_offline_lists_the_gateway_models(gateway, tmp_path):
    base, key, expected = gateway
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run(["uv", "sync", "--inexact", "--extra", "open-webui"], cwd=SERVICE_DIR, env=env, check=True,
                   timeout=3600, stdin=subprocess.DEVNULL)
    env.update(contract_env())
    env.update({"OPENAI_API_BASE_URL": base, "OPENAI_API_KEY": key, "DATA_DIR": str(tmp_path / "data"),
                "WEBUI_AUTH": "False", "WEBUI_SECRET_KEY": "test-secret-not-for-production",
                "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    port = free_port()
    log = tmp_path / "open-webui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["uv", "run", "--extra", "open-webui", "open-webui", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=SERVICE_DIR, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc, 600, log)
        # With WEBUI_AUTH=False, sign-in returns a token for the built-in single user.
        signin = httpx.post(f"{url}/api/v1/auths/signin", json={"email": "admin@localhost", "password": "admin"},
                            timeout=60)
        assert signin.status_code == 200, signin.text
        token = signin.json()["token"]
        models = httpx.get(f"{url}/api/models", headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert models.status_code == 200, models.text
        ids = {m["id"] for m in models.json()["data"]}
        assert ids, "Open WebUI listed no models from the gateway"
        if expected:
            assert set(expected) <= ids
        assert all(i.startswith("jerry-") for i in ids), ids
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
