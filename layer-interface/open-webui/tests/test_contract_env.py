"""The contract's env: offline, pointed at the gateway, safe on a LAN, small prompts, slim install.

Fast checks of what `homelab up` and the rendered env template give Open WebUI; the browser test
(HOMELAB_TEST_OPENWEBUI=1) checks the same settings on a running instance.
"""

from __future__ import annotations

import json
import tomllib

import yaml
from contracts import REPO, SERVICE_DIR, all_contracts, env_defaults, env_entry, host_address

CONTRACT = all_contracts()["open-webui"]
ENV = env_defaults()


def test_points_at_the_gateway_and_stays_offline() -> None:
    gateway = yaml.safe_load((REPO / "mesh" / "mesh.yaml").read_text())["gateway"]["public_base_url"]
    assert ENV["OPENAI_API_BASE_URL"].rstrip("/") == gateway.rstrip("/")
    assert ENV["OFFLINE_MODE"] == "true" and ENV["ENABLE_OLLAMA_API"] == "false"
    assert ENV["RAG_EMBEDDING_ENGINE"] == "openai"  # no local embedding model (not installed)
    assert (ENV["ANONYMIZED_TELEMETRY"], ENV["DO_NOT_TRACK"], ENV["SCARF_NO_ANALYTICS"]) == ("false", "true", "true")
    assert ENV["ENABLE_COMMUNITY_SHARING"] == "False"  # would upload chats to the internet
    assert CONTRACT["run"]["autostart"] is False  # opt-in: `homelab up --with open-webui`


def test_no_builtin_tools_on_chat_requests() -> None:
    """36 built-in tools (~26 KB) on every chat request filled jerry-tiny's 8k context."""
    metadata = json.loads(ENV["DEFAULT_MODEL_METADATA"])
    assert metadata["capabilities"]["builtin_tools"] is False
    # Extra completions per turn on a 2-core CPU mesh: off (the title stays).
    assert ENV["ENABLE_FOLLOW_UP_GENERATION"] == ENV["ENABLE_TAGS_GENERATION"] == "False"


def test_cors_allows_exactly_the_uis_own_origins() -> None:
    port, address = CONTRACT["port"], host_address(CONTRACT)
    origins = ENV["CORS_ALLOW_ORIGIN"].split(";")
    assert set(origins) == {f"http://localhost:{port}", f"http://{address}:{port}"}
    assert "*" not in ENV["CORS_ALLOW_ORIGIN"]


def test_rendered_env_template_carries_the_filled_origins() -> None:
    template = (REPO / "platform/ops/env/open-webui.env.example").read_text()
    assert f"\nCORS_ALLOW_ORIGIN={ENV['CORS_ALLOW_ORIGIN']}\n" in template
    assert "{port}" not in template and "{host_address}" not in template


def test_accounts_on_and_sign_up_closed_after_the_first_admin() -> None:
    assert ENV["WEBUI_AUTH"] == "True"
    # Open WebUI 0.12.4 always lets the first account (the admin) sign up, whatever ENABLE_SIGNUP says.
    assert ENV["ENABLE_SIGNUP"] == "False"
    assert ENV["DEFAULT_USER_ROLE"] == "pending"


def test_keys_come_from_the_mesh_secrets() -> None:
    for name in ("WEBUI_SECRET_KEY", "OPENAI_API_KEY"):
        entry = env_entry(name)
        assert entry.get("secret") is True and entry.get("required") is True, entry  # `up` generates them
        assert "default" not in entry


def test_state_under_the_checkout_for_up_machine_wide_for_systemd() -> None:
    data_dir = env_entry("DATA_DIR")
    assert data_dir["up_value"] == "{state}/open-webui"
    assert data_dir["default"] == "/var/lib/homelab-llm/open-webui"


def test_slim_install_has_no_torch_and_no_cuda() -> None:
    lock = tomllib.loads((SERVICE_DIR / "uv.lock").read_text())
    names = {p["name"] for p in lock["package"]}
    assert "open-webui" in names
    heavy = sorted(n for n in names if n in {"torch", "triton", "sentence-transformers", "transformers",
                                             "accelerate", "faster-whisper"} or n.startswith(("nvidia-", "cuda-")))
    assert not heavy, f"the open-webui extra pulls {heavy} again (see pyproject exclude-dependencies)"
