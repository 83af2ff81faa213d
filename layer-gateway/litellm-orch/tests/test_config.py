"""config/router.yaml: rendered part as the contracts say, hand-tuned part as documented, and
LiteLLM's own --validate_config accepts the test copy (and rejects a broken one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import procs
import pytest

from meshkit.testing import free_port
import yaml

ROUTER = procs.SERVICE / "config" / "router.yaml"
EXPECTED_MODEL_LIST = [
    {"model_name": "jerry-chat-lcpp", "litellm_params": {  # llamacpp-server (opt-in)
        "model": "openai/jerry-chat-lcpp", "api_base": "http://127.0.0.1:4011/v1",
        "api_key": "os.environ/LLAMACPP_SERVER_API_KEY"}},
    {"model_name": "jerry-chat", "litellm_params": {
        "model": "openai/jerry-chat", "api_base": "http://127.0.0.1:4010/v1",
        "api_key": "os.environ/OV_SERVER_API_KEY"}},
    {"model_name": "jerry-tiny", "litellm_params": {
        "model": "openai/jerry-tiny", "api_base": "http://127.0.0.1:4010/v1",
        "api_key": "os.environ/OV_SERVER_API_KEY"}},
    *({"model_name": f"jerry-tiny-{a}", "litellm_params": {
        "model": f"openai/{a}-jerry-tiny", "api_base": "http://127.0.0.1:4020/v1",
        "api_key": "os.environ/OPTILLM_PROXY_KEY"}} for a in ("moa", "re2", "bon")),
]


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(ROUTER.read_text())


def test_header_says_model_list_is_generated() -> None:
    head = ROUTER.read_text().split("model_list:")[0]
    assert "uv run homelab render" in head and "generated" in head.lower()


def test_model_list_is_the_rendered_one(config: dict) -> None:
    assert config["model_list"] == EXPECTED_MODEL_LIST


def test_no_secret_is_written_in_the_config(config: dict) -> None:
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    for entry in config["model_list"]:
        assert entry["litellm_params"]["api_key"].startswith("os.environ/")


def test_hardening_settings(config: dict) -> None:
    assert config["general_settings"]["custom_auth"] == "litellm_orch.auth.user_api_key_auth"
    assert config["general_settings"]["health_check_details"] is False
    assert config["router_settings"]["num_retries"] == 0
    assert config["litellm_settings"]["num_retries"] == 0
    assert config["router_settings"]["cooldown_time"] <= 10


def test_aliases_call_back_with_a_plain_name(config: dict) -> None:
    """OptiLLM strips the approach prefix and calls the gateway with the rest: that must be a
    logical name served straight by a backend, never another alias (no routing loop)."""
    names = {e["model_name"]: e["litellm_params"] for e in config["model_list"]}
    optillm_bases = {p["api_base"] for p in names.values() if p["api_key"] == "os.environ/OPTILLM_PROXY_KEY"}
    for params in names.values():
        if params["api_base"] in optillm_bases:
            target = params["model"].removeprefix("openai/").split("-", 1)[1]
            assert target in names
            assert names[target]["api_base"] not in optillm_bases


def _validate(cfg: Path) -> subprocess.CompletedProcess:
    env = procs.base_env(LITELLM_MASTER_KEY="sk-validate", OV_SERVER_API_KEY="x", OPTILLM_PROXY_KEY="y")
    return subprocess.run(["litellm", "--config", str(cfg), "--validate_config"], env=env, cwd=procs.SERVICE,
                          capture_output=True, text=True, timeout=180)


def test_litellm_validates_the_rendered_config(tmp_path: Path, config: dict) -> None:
    copy = procs.rewrite_api_bases(config, {procs.OV_SERVER_PORT: free_port(),
                                            procs.OPTILLM_PORT: free_port()})
    cfg = tmp_path / "router.yaml"
    cfg.write_text(yaml.safe_dump(copy, sort_keys=False))
    result = _validate(cfg)
    assert result.returncode == 0, result.stdout + result.stderr


def test_litellm_rejects_a_broken_config(tmp_path: Path, config: dict) -> None:
    broken = dict(config, general_settings={**config["general_settings"],
                                            "custom_auth": "litellm_orch.nope.missing"})
    cfg = tmp_path / "router.yaml"
    cfg.write_text(yaml.safe_dump(broken, sort_keys=False))
    assert _validate(cfg).returncode != 0
