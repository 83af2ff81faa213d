"""Opt-in (HOMELAB_TEST_OPENWEBUI=1): a person's first chats, in a real browser, on a private mesh.

`homelab up` (the control plane's own) starts ov-server, the gateway, OptiLLM and Open WebUI in a
private mesh (meshkit.testing.PrivateMesh: a clone of this checkout in its own network namespace,
on the contract ports), with this contract's env; only OPENAI_API_BASE_URL goes through a
transparent wire recorder in front of the gateway. The recorder, the browser and the test's own
HTTP calls run inside the namespace too. Debian's Chromium, driven by
Playwright, signs up the first admin, then picks each model the gateway serves in turn, sends
"hello" and waits for the answer: streamed for plain models (a longer answer arrives in several
visible updates), present for every model. Screenshots are saved in the test's temp dir (printed).

Installs what it needs: Debian's chromium (apt-get, as root) and the `browser` dependency group
(playwright). Open WebUI itself (the `open-webui` extra, ~1.2 GB) is installed by `homelab up`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from contracts import REPO, SERVICE_DIR, all_contracts, plain_models
from meshkit.testing import PrivateMesh, netns_unavailable
from replay import captured
from wire_recorder import WireRecorder

OPT_IN = os.environ.get("HOMELAB_TEST_OPENWEBUI") == "1"
pytestmark = pytest.mark.skipif(not OPT_IN, reason="opt-in: HOMELAB_TEST_OPENWEBUI=1 (real browser, private mesh)")

SERVICES = ["ov-server", "litellm-orch", "optillm-proxy", "open-webui"]
ADMIN = ("Admin", "admin@homelab.test", "correct-horse-battery-staple")


def install_browser() -> None:
    if not Path("/usr/bin/chromium").exists():
        if os.geteuid() != 0:
            pytest.fail("Debian's chromium is missing: apt-get install chromium (as root)")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=1200,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run(["uv", "sync", "--frozen", "--inexact", "--group", "browser"], cwd=SERVICE_DIR, env=env,
                   check=True, timeout=1200, stdin=subprocess.DEVNULL)
    importlib.invalidate_caches()


# The contract ports the private mesh serves on (its own loopback: nothing else is there).
PORTS = {name: int(all_contracts()[name]["port"]) for name in ("litellm-orch", "open-webui")}


def _uv_projects(root: Path) -> list[Path]:
    """The clone's control plane and the uv projects of the services this test starts."""
    dirs = {"ov-server": "layer-inference/ov-server", "litellm-orch": "layer-gateway/litellm-orch",
            "optillm-proxy": "layer-gateway/optillm-proxy", "open-webui": "layer-interface/open-webui"}
    return [root, *(root / dirs[name] for name in SERVICES)]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    """(PrivateMesh, WireRecorder, Open WebUI URL): everything up and healthy."""
    why_not = netns_unavailable()
    if why_not:
        pytest.fail(f"the private mesh cannot be made here: {why_not}")
    install_browser()
    private = PrivateMesh.create(tmp_path_factory.mktemp("private"), repo=REPO, prefix="hl-owui")
    recorder = None
    try:
        private.presync(_uv_projects(private.root))
        private.presync([private.root / "layer-interface/open-webui"], extras=["open-webui"])
        with private.netns.entered():  # the recorder's thread listens and connects inside
            recorder = WireRecorder(f"http://127.0.0.1:{PORTS['litellm-orch']}").start()
        (private.etc / "open-webui.env").write_text(f"OPENAI_API_BASE_URL=http://127.0.0.1:{recorder.port}/v1\n")
        # One LiteLLM worker starts in half the time; the keys still come from .homelab/secrets.env.
        (private.root / "layer-gateway/litellm-orch/config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        only = [a for name in SERVICES for a in ("--only", name)]
        up = private.homelab("up", *only, "--timeout", "900", timeout=1800)
        assert up.returncode == 0, f"homelab up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        assert re.search(r"open-webui\s+healthy", up.stdout), up.stdout[-3000:]
        yield private, recorder, f"http://127.0.0.1:{PORTS['open-webui']}"
    finally:
        down = private.homelab("down")
        if recorder is not None:
            recorder.stop()
        print(f"\nprivate mesh down: exit {down.returncode}; Open WebUI log tail:\n{private.log('open-webui')[-1500:]}")
        private.close()


@pytest.fixture(autouse=True)
def inside(request: pytest.FixtureRequest):
    """Each test's own HTTP calls go to the private mesh: its thread is in the namespace."""
    if "mesh" not in request.fixturenames:
        yield
        return
    with request.getfixturevalue("mesh")[0].netns.entered():
        yield


@pytest.fixture(scope="module")
def ui(mesh, tmp_path_factory: pytest.TempPathFactory):
    from browser import OpenWebUI
    from playwright.sync_api import sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {shots}")
    with mesh[0].netns.entered():  # Playwright's driver, and the Chromium it starts, live inside
        playwright = sync_playwright().start()
    try:
        with mesh[0].netns.entered():
            page = OpenWebUI(playwright, mesh[2], shots)
            page.sign_up_first_admin(*ADMIN)
        yield page
        page.close()
    finally:
        playwright.stop()


def gateway_models(private: PrivateMesh) -> list[str]:
    key = private.secrets()["LITELLM_MASTER_KEY"]
    listed = httpx.get(f"http://127.0.0.1:{PORTS['litellm-orch']}/v1/models",
                       headers={"Authorization": f"Bearer {key}"}, timeout=60, trust_env=False)
    assert listed.status_code == 200, listed.text
    return sorted(m["id"] for m in listed.json()["data"])


def test_ui_state_lives_in_the_checkouts_state_folder(mesh) -> None:
    private, _, _ = mesh
    assert (private.state / "open-webui" / "webui.db").is_file()
    assert "CORS_ALLOW_ORIGIN IS SET TO '*'" not in private.log("open-webui")


def test_first_admin_then_sign_up_is_closed(mesh, ui) -> None:
    _, _, url = mesh
    second = httpx.post(f"{url}/api/v1/auths/signup", json={"name": "Mallory", "email": "mallory@homelab.test",
                                                             "password": "another-long-password"},
                        timeout=60, trust_env=False)
    assert second.status_code == 403, second.text
    me = httpx.get(f"{url}/api/v1/auths/", headers={"Authorization": f"Bearer {ui.token()}"}, timeout=60,
                   trust_env=False)
    assert me.status_code == 200 and me.json()["role"] == "admin", me.text


def test_cors_answers_only_the_uis_own_origin(mesh) -> None:
    _, _, url = mesh
    own = httpx.get(f"{url}/api/config", headers={"Origin": url}, timeout=60, trust_env=False)
    assert own.headers.get("access-control-allow-origin") == url
    other = httpx.get(f"{url}/api/config", headers={"Origin": "http://elsewhere.example:3000"}, timeout=60,
                      trust_env=False)
    assert "access-control-allow-origin" not in other.headers


def test_every_gateway_model_answers_hello_in_the_browser(mesh, ui) -> None:
    private, recorder, _ = mesh
    models = gateway_models(private)
    assert set(plain_models()) <= set(models)
    assert sorted(ui.listed_models()) == models  # the picker lists exactly what the gateway serves
    plain, report = set(plain_models()), []
    for n, model in enumerate(models):
        ui.new_chat(model)
        sent = len(recorder.exchanges)
        answer = ui.send(model, "hello", shot=f"{10 + n:02d}-hello-{model}")
        chat = next(e for e in recorder.exchanges[sent:] if isinstance(e.body, dict) and e.body.get("stream"))
        report.append(f"{model}: {len(answer.deltas)} text update(s) in the browser, {chat.content_chunks} "
                      f"streamed chunk(s) from the gateway, {len(answer.text)} chars, error={answer.error[:120]!r}")
        assert not answer.error, f"{model}: {answer.error}"
        assert answer.text.strip(), f"{model}: empty answer"
        assert answer.deltas, f"{model}: the answer did not arrive as streamed text"
        shown = ui.shown_answer()
        words = re.findall(r"[A-Za-z0-9]+", answer.text)  # markdown leaves these as they are
        assert shown.strip() and all(w in shown for w in words), (model, answer.text, shown)
        if model in plain:
            # Open WebUI asked for a stream and relayed every chunk the gateway streamed.
            assert chat.body["stream"] is True and chat.content_chunks >= 1
            assert len(answer.deltas) == chat.content_chunks, report[-1]
    print("\n" + "\n".join(report))


def test_open_webui_still_sends_the_captured_request_shape(mesh, ui) -> None:
    """The default suite replays tests/captured/first-message.json: it must match what is sent."""
    _, recorder, _ = mesh
    expected = next(r["body"] for r in captured() if r["purpose"] == "chat")
    model = min(plain_models())
    ui.new_chat(model)
    sent = len(recorder.exchanges)
    answer = ui.send(model, "hello", shot="20-shape")
    assert not answer.error, answer.error
    chats = [e.body for e in recorder.exchanges[sent:] if isinstance(e.body, dict) and e.body.get("stream")]
    first = chats[0]
    assert set(first) == set(expected), json.dumps(first)[:2000]
    assert "tools" not in first
    assert [m["role"] for m in first["messages"]] == [m["role"] for m in expected["messages"]]
    # The title task is sent after the answer has streamed, on its own schedule: wait for it.
    deadline = time.monotonic() + 60
    while not (titles := [e.body for e in recorder.exchanges[sent:]
                          if isinstance(e.body, dict) and not e.body.get("stream")]):
        assert time.monotonic() < deadline, "Open WebUI sent no title request within 60 s of the answer"
        time.sleep(0.5)
    expected_tasks = [r["body"] for r in captured() if r["purpose"] != "chat"]
    assert titles and set(titles[0]) == set(expected_tasks[0]), json.dumps(titles[:1])[:2000]


def test_plain_models_stream_a_longer_answer_visibly(mesh, ui) -> None:
    """jerry-tiny's "hello" is a few characters (one chunk); ask for 200 tokens to see it grow.

    Set as a person would in Settings > General > Advanced Parameters: max tokens 200 and the
    custom parameter ignore_eos (ov-server's extension: keep going past end-of-sequence)."""
    _, recorder, url = mesh
    auth = {"Authorization": f"Bearer {ui.token()}"}
    settings = httpx.get(f"{url}/api/v1/users/user/settings", headers=auth, timeout=60, trust_env=False).json() or {}
    settings.setdefault("ui", {})["params"] = {"max_tokens": 200, "custom_params": {"ignore_eos": "true"}}
    saved = httpx.post(f"{url}/api/v1/users/user/settings/update", json=settings, headers=auth, timeout=60,
                       trust_env=False)
    assert saved.status_code == 200, saved.text
    report = []
    for n, model in enumerate(sorted(plain_models())):
        ui.new_chat(model)
        sent = len(recorder.exchanges)
        answer = ui.send(model, "Tell me a long story.", shot=f"{30 + n:02d}-long-{model}")
        chat = next(e for e in recorder.exchanges[sent:] if isinstance(e.body, dict) and e.body.get("stream"))
        report.append(f"{model}: {len(answer.deltas)} updates over "
                      f"{(answer.done_at - answer.deltas[0][0]) if answer.deltas else 0:.2f} s, "
                      f"{chat.content_chunks} gateway chunks, sent max_tokens={chat.body.get('max_tokens')}")
        assert not answer.error, f"{model}: {answer.error}"
        assert chat.body.get("max_tokens") == 200 and chat.body.get("ignore_eos") is True, chat.body
        assert answer.streamed_over_time, report[-1]
    print("\n" + "\n".join(report))



def test_an_error_reaches_the_user_as_the_gateway_words_it(mesh, ui) -> None:
    """A message longer than the model's context: the chat shows the gateway's error message
    unchanged (the gateway shapes its wording: layer-gateway/litellm-orch)."""
    _, recorder, _ = mesh
    model = min(plain_models())
    ui.new_chat(model)
    sent = len(recorder.exchanges)
    answer = ui.send(model, "hello " * 10_000, shot="40-too-long")
    chat = next(e for e in recorder.exchanges[sent:] if isinstance(e.body, dict) and e.body.get("stream"))
    assert chat.status >= 400, (chat.status, chat.text[:500])
    gateway_message = json.loads(chat.error_body)["error"]["message"]
    print(f"\n{model}, a 60,000-character message: the gateway answered {chat.status}; the chat shows "
          f"{answer.error!r}")
    assert answer.error.strip() == gateway_message.strip()
    shown = " ".join(ui.page.inner_text("body").split())
    assert " ".join(gateway_message.split())[:200] in shown
