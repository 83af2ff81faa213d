"""Registry file: hot reload, per-model failures, auth, and config errors."""

import os
import shutil
import subprocess
import sys

import httpx
import pytest
from conftest import start_server, stop_server, wait_until
from openai import AuthenticationError, OpenAI

from meshkit.envfile import read as parse_env_file
from ov_server.config import ConfigError, load_settings
from ov_server.registry import load_registry

KEY = "sk-test-key"
HELLO = [{"role": "user", "content": "Hello!"}]

BASE = """models:
  jerry-tiny:
    builtin: jerry-tiny
    min_new_tokens: 1
    ignore_eos: true                 # registry default for requests: run to max_tokens
    default_max_tokens: 16
"""


@pytest.fixture
def reg_server(tmp_path):
    reg = tmp_path / "models.yaml"
    reg.write_text(BASE)
    s = start_server(tmp_path, {"OV_SERVER_REGISTRY": str(reg), "OV_SERVER_API_KEY": KEY})
    yield s, reg
    stop_server(s)


def model_ids(s):
    r = httpx.get(s.base + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    return [m["id"] for m in r.json()["data"]]


def test_auth_required_but_health_open(reg_server):
    s, _ = reg_server
    assert s.health().status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.get(s.base + "/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(s.base + "/v1/chat/completions", headers=headers, json={"model": "jerry-tiny", "messages": HELLO})
        assert r.status_code == 401
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=s.base + "/v1", api_key="nope", max_retries=0).models.list()
    c = OpenAI(base_url=s.base + "/v1", api_key=KEY, max_retries=0)
    r = c.chat.completions.create(model="jerry-tiny", messages=HELLO)
    assert r.usage.completion_tokens == 16  # default_max_tokens from the registry


def test_hot_reload_add_break_remove(reg_server, tmp_path):
    s, reg = reg_server
    c = OpenAI(base_url=s.base + "/v1", api_key=KEY, max_retries=0)
    assert model_ids(s) == ["jerry-tiny"]

    # add a model (relative path: resolved next to the registry) and two broken ones
    built = subprocess.run([sys.executable, "-m", "ov_server.cli", "build-tiny-model", str(tmp_path / "m2.gguf")],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert built.endswith("m2.gguf")
    reg.write_text(BASE + "  jerry-copy:\n    path: m2.gguf\n    device: CPU\n"
                   "  broken:\n    path: /nonexistent/model.gguf\n"
                   "  bad-device:\n    path: m2.gguf\n    device: NOSUCHDEVICE\n")
    assert wait_until(lambda: "jerry-copy" in model_ids(s))
    r = c.chat.completions.create(model="jerry-copy", messages=HELLO, max_tokens=3, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 3
    states = lambda: {m: v["state"] for m, v in s.health().json()["models"].items()}  # noqa: E731
    assert wait_until(lambda: states().get("broken") == states().get("bad-device") == "failed")
    # Some models serve, two are down: 200 "degraded" (the mesh's sweep keeps the backend up),
    # and each down model says why.
    h = s.health()
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "degraded" and "broken" in body["reason"]
    assert body["models"]["broken"]["state"] == "failed" and body["models"]["jerry-copy"]["state"] == "ok"
    assert "/nonexistent/model.gguf" in body["models"]["broken"]["error"]  # the operator's own path
    assert "NOSUCHDEVICE" in body["errors"]["bad-device"] and "core.cpp" not in body["errors"]["bad-device"]
    assert "jerry-copy" in model_ids(s) and "bad-device" not in model_ids(s)
    r = httpx.post(s.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "broken", "messages": HELLO})
    assert r.status_code == 503 and r.json()["error"]["param"] == "model"
    assert "model.gguf" in r.json()["error"]["message"] and "/nonexistent" not in r.json()["error"]["message"]

    # a change that cannot load keeps the old model serving and says why
    pid = s.health().json()["models"]["jerry-copy"]["pid"]
    reg.write_text(BASE + "  jerry-copy:\n    path: m2.gguf\n    device: NOSUCHDEVICE\n")
    assert wait_until(lambda: "reload_error" in s.health().json()["models"]["jerry-copy"])
    copy = s.health().json()["models"]["jerry-copy"]
    assert copy["state"] == "ok" and copy["pid"] == pid and "NOSUCHDEVICE" in copy["reload_error"]
    r = c.chat.completions.create(model="jerry-copy", messages=HELLO, max_tokens=3, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 3

    # an invalid file keeps the loaded models and says why on /health
    reg.write_text("models: [this is: not valid\n")
    assert wait_until(lambda: "registry_error" in s.health().json())
    assert "jerry-copy" in model_ids(s)
    assert c.chat.completions.create(model="jerry-tiny", messages=HELLO, max_tokens=2).usage.completion_tokens == 2

    # remove: the model is gone (404, no fallback) and health is green again
    reg.write_text(BASE)
    assert wait_until(lambda: model_ids(s) == ["jerry-tiny"])
    assert wait_until(lambda: s.health().json()["status"] == "ok")
    assert s.health().status_code == 200
    r = httpx.post(s.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "jerry-copy", "messages": HELLO})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    # the replaced and removed engines' processes are gone
    assert wait_until(lambda: not _alive(pid))


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_cli(*args, env_file=None, env=None):
    cmd = [sys.executable, "-m", "ov_server.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def test_bad_registry_at_start_is_a_clear_error(tmp_path):
    reg = tmp_path / "r.yaml"
    reg.write_text("models:\n  x:\n    device: CPU\n")
    env = tmp_path / "e.env"
    env.write_text("")
    r = run_cli("serve", "--port", "1", "--registry", str(reg), "--env-file", str(env))
    assert r.returncode == 2
    assert "r.yaml" in r.stderr and "path" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("serve", "--port", "1", "--env-file", str(tmp_path / "missing.env"))
    assert r.returncode == 2 and "missing.env" in r.stderr and "Traceback" not in r.stderr


def test_registry_validation_messages(tmp_path):
    reg = tmp_path / "r.yaml"
    cases = {
        "models: {}\n": "empty",
        "models:\n  a:\n    builtin: other\n": "unknown builtin",
        "models:\n  a:\n    path: x.gguf\n    bogus: 1\n": "bogus",
        "models:\n  a:\n    path: x\n    scheduler: {max_num_seqs: 0}\n": "scheduler.max_num_seqs",
        "- just a list\n": "mapping",
    }
    for text, needle in cases.items():
        reg.write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_registry(reg)
    reg.write_text("models:\n  a:\n    path: sub/m.gguf\n    device: GPU\n")
    spec = load_registry(reg)["a"]
    assert spec.path == str(tmp_path / "sub" / "m.gguf") and spec.device == "GPU"


def test_env_file_parsing_and_precedence(tmp_path, monkeypatch):
    f = tmp_path / "x.env"
    f.write_text("# comment\nexport OV_SERVER_API_KEY='k1'\nOV_SERVER_MODEL_DIR=\"/tmp/m\"\n\n")
    assert parse_env_file(f) == {"OV_SERVER_API_KEY": "k1", "OV_SERVER_MODEL_DIR": "/tmp/m"}
    for k in ("OV_SERVER_API_KEY", "OV_SERVER_REGISTRY", "OV_SERVER_MODEL_DIR", "OV_SERVER_ENV_FILE"):
        monkeypatch.delenv(k, raising=False)
    s = load_settings(str(f))
    assert s.api_key == "k1" and str(s.model_dir) == "/tmp/m" and s.registry_path is None
    monkeypatch.setenv("OV_SERVER_API_KEY", "k2")
    assert load_settings(str(f)).api_key == "k2"  # real env wins
    monkeypatch.setenv("OV_SERVER_ENV_FILE", str(f))
    assert load_settings().env_file == f
    f.write_text("not a pair\n")
    with pytest.raises(ConfigError, match="x.env:1"):
        load_settings(str(f))


def test_builtin_entries_take_the_builtin_defaults(tmp_path):
    from ov_server.registry import builtin_spec, default_registry

    assert set(default_registry()) == {"jerry-chat", "jerry-tiny"}
    reg = tmp_path / "r.yaml"
    reg.write_text("models:\n  my-chat:\n    builtin: jerry-chat\n"
                   "  short:\n    builtin: jerry-chat\n    default_max_tokens: 16\n"
                   "    properties: {INFERENCE_NUM_THREADS: 2}\n")
    models = load_registry(reg)
    assert models["my-chat"] == builtin_spec("jerry-chat")
    assert models["my-chat"].default_max_tokens == 128 and models["my-chat"].properties["INFERENCE_PRECISION_HINT"] == "f32"
    short = models["short"]
    assert short.default_max_tokens == 16
    assert short.properties == {**builtin_spec("jerry-chat").properties, "INFERENCE_NUM_THREADS": 2}
    reg.write_text("models:\n  a:\n    builtin: jerry-huge\n")
    with pytest.raises(ConfigError, match="models.a.*unknown builtin 'jerry-huge' .*'jerry-chat'"):
        load_registry(reg)


def test_prepare_converts_once_and_reports_a_bad_model_without_failing(tmp_path):
    """`ov-server prepare` (homelab up's run.prepare): converts each GGUF once; a model it cannot
    prepare is reported, and serve still starts (exit 0)."""
    from ov_server.tiny_model import build_tiny_model

    shutil.copy(build_tiny_model(tmp_path / "m"), tmp_path / "copy.gguf")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    reg = tmp_path / "r.yaml"
    reg.write_text("models:\n  jerry-copy:\n    path: copy.gguf\n  jerry-broken:\n    path: broken.gguf\n")
    env = {**os.environ, "OV_SERVER_MODEL_DIR": str(tmp_path / "models"), "CI": "true"}
    first = run_cli("prepare", "--registry", str(reg), env=env)
    assert first.returncode == 0, first.stderr
    assert "jerry-copy: converted: " in first.stdout
    assert "model jerry-broken: could not be prepared" in first.stderr
    assert "ov-server: error: model jerry-broken: " in first.stderr and "Traceback" not in first.stderr
    again = run_cli("prepare", "--registry", str(reg), env=env)
    assert "jerry-copy: converted earlier: " in again.stdout
    assert len(list((tmp_path / "models" / "converted").iterdir())) == 1


def test_detokenizer_setting(tmp_path, monkeypatch):
    env = tmp_path / "x.env"
    env.write_text("OV_SERVER_DETOKENIZER=model\n")
    assert load_settings(str(env)).detokenizer == "model"
    env.write_text("")
    assert load_settings(str(env)).detokenizer == "auto"
    monkeypatch.setenv("OV_SERVER_DETOKENIZER", "fast")
    with pytest.raises(ConfigError, match="OV_SERVER_DETOKENIZER: expected one of auto, model, got 'fast'"):
        load_settings(str(env))


def test_missing_registry_file_is_written_with_the_builtin_models(tmp_path):
    """`homelab up` points OV_SERVER_REGISTRY at a file that may not exist yet: it is written once
    (the built-in models, as with no registry), so models can then be added by editing it."""
    from ov_server.registry import default_registry, ensure_registry

    path = tmp_path / "ov-models.yaml"
    assert ensure_registry(path) is True
    assert load_registry(path) == default_registry()
    path.write_text(BASE)
    assert ensure_registry(path) is False and path.read_text() == BASE  # never overwritten
    assert [p.name for p in tmp_path.iterdir()] == ["ov-models.yaml"]  # no temporary file left
    with pytest.raises(ConfigError, match="does-not-exist does not exist"):
        ensure_registry(tmp_path / "does-not-exist" / "ov-models.yaml")  # a mistyped folder stays an error


def test_stream_interval_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("OV_SERVER_STREAM_INTERVAL_MS", raising=False)
    env = tmp_path / "x.env"
    env.write_text("")
    assert load_settings(str(env)).stream_interval_ms == 2.0
    env.write_text("OV_SERVER_STREAM_INTERVAL_MS=0\n")
    assert load_settings(str(env)).stream_interval_ms == 0.0
    for bad in ("-1", "51", "soon", "nan"):
        env.write_text(f"OV_SERVER_STREAM_INTERVAL_MS={bad}\n")
        with pytest.raises(ConfigError, match=f"OV_SERVER_STREAM_INTERVAL_MS: expected milliseconds from 0 to 50, "
                                              f"got '{bad}'"):
            load_settings(str(env))
