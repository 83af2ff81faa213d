"""meshkit.testing's gateway starter: what a test gateway inherits from the developer's shell, and
the command and config it is started with (the real start.sh runs in litellm-orch's and
tiny-agents' suites, which start it through this)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from meshkit.testing import gateway_env, spawn_gateway


def test_the_shells_mesh_settings_never_reach_the_test_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LITELLM_MASTER_KEY", "OPTILLM_PROXY_KEY", "OV_SERVER_API_KEY", "OPENAI_API_KEY", "VIRTUAL_ENV"):
        monkeypatch.setenv(key, "from-the-shell")
    monkeypatch.setenv("HOME_SETTING_KEPT", "yes")
    env = gateway_env(LITELLM_MASTER_KEY="sk-test")
    assert env["LITELLM_MASTER_KEY"] == "sk-test"
    assert not {"OPTILLM_PROXY_KEY", "OV_SERVER_API_KEY", "OPENAI_API_KEY", "VIRTUAL_ENV"} & env.keys()
    assert env["HOME_SETTING_KEPT"] == "yes"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True" and env["HF_HUB_OFFLINE"] == "1"
    assert "127.0.0.1" in env["NO_PROXY"].split(",")


def test_spawns_start_sh_of_the_given_checkout_on_loopback(tmp_path: Path) -> None:
    # A stand-in start.sh that records its argv and the config it was handed, then exits.
    scripts = tmp_path / "repo" / "layer-gateway" / "litellm-orch" / "scripts"
    scripts.mkdir(parents=True)
    script = scripts / "start.sh"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.argv"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config = {"model_list": [{"model_name": "jerry-x", "litellm_params": {"model": "openai/jerry-x"}}]}
    proc = spawn_gateway(tmp_path / "repo", tmp_path, config, gateway_env(), name="gw", port=4999, workers=1)
    assert proc.popen.wait(10) == 0
    argv = (scripts / "start.sh.argv").read_text().split()
    assert argv == ["--host", "127.0.0.1", "--port", "4999", "--config", str(tmp_path / "gw.router.yaml"),
                    "--workers", "1"]
    assert json.loads((tmp_path / "gw.router.yaml").read_text()) == config
    assert proc.base == "http://127.0.0.1:4999" and proc.log == tmp_path / "gw.log"
