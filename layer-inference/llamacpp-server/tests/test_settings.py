"""How the environment becomes llama-server's argv and environment (pure), and the CLI's answers
to bad input (real subprocesses, no binary needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import contract

from llamacpp_server import settings
from llamacpp_server.model import builtin_model_path


def test_upstream_id_is_the_contracts() -> None:
    assert [m["upstream_id"] for m in contract()["models"]] == [settings.UPSTREAM_ID]


def test_defaults_match_the_contract_and_the_builtin_model() -> None:
    conf = settings.load({})
    assert conf.model == builtin_model_path() and conf.model.stat().st_size > 50_000_000
    declared = {e["name"]: e.get("default") for e in contract()["env"]}
    assert declared["LLAMACPP_SERVER_PARALLEL"] == str(conf.parallel)
    assert declared["LLAMACPP_SERVER_CONTEXT"] == str(conf.context)
    assert declared["LLAMACPP_SERVER_THREADS"] == str(conf.threads)
    assert declared["LLAMACPP_SERVER_MAX_TOKENS"] == str(conf.max_tokens)
    assert declared["LLAMACPP_SERVER_TEMPERATURE"] == str(conf.temperature)
    assert declared["LLAMACPP_SERVER_TOP_P"] == str(conf.top_p)
    assert declared["LLAMACPP_SERVER_CHAT_TEMPLATE"] == conf.chat_template == "chatml"
    # Every variable the code reads is declared in the contract (so the env template shows it).
    source = "\n".join(p.read_text() for p in Path(settings.__file__).parent.glob("*.py"))
    import re
    assert set(re.findall(r'"(LLAMACPP_SERVER_[A-Z_]+)"', source)) <= set(declared)


def test_the_key_goes_in_the_environment_never_on_the_command_line(tmp_path: Path) -> None:
    conf = settings.load({"LLAMACPP_SERVER_API_KEY": "sekrit-123", "LLAMACPP_SERVER_PARALLEL": "8"})
    argv = settings.command(tmp_path / "llama-server", conf, "127.0.0.1", 4011)
    assert "sekrit-123" not in " ".join(argv)
    assert argv[argv.index("--parallel") + 1] == "8" and "--kv-unified" in argv and "--cont-batching" in argv
    assert argv[argv.index("--alias") + 1] == "jerry-chat-lcpp"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "4011"
    env = settings.child_env(conf, {"PATH": "/bin", "LLAMA_ARG_THREADS": "64"})
    assert env == {"PATH": "/bin", "LLAMA_API_KEY": "sekrit-123"}  # llama.cpp's own LLAMA_* do not leak in


def test_no_key_means_no_check() -> None:
    conf = settings.load({"LLAMACPP_SERVER_API_KEY": "  "})
    assert conf.api_key is None and "LLAMA_API_KEY" not in settings.child_env(conf, {})


def test_gguf_template_is_the_files_own(tmp_path: Path) -> None:
    conf = settings.load({"LLAMACPP_SERVER_CHAT_TEMPLATE": "gguf"})
    assert "--chat-template" not in settings.command(tmp_path / "x", conf, "127.0.0.1", 1)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("LLAMACPP_SERVER_PARALLEL", "four", "LLAMACPP_SERVER_PARALLEL='four': expected a whole number"),
    ("LLAMACPP_SERVER_PARALLEL", "0", "LLAMACPP_SERVER_PARALLEL=0: must be at least 1"),
    ("LLAMACPP_SERVER_CONTEXT", "100", "LLAMACPP_SERVER_CONTEXT=100: must be at least 256"),
    ("LLAMACPP_SERVER_TEMPERATURE", "hot", "LLAMACPP_SERVER_TEMPERATURE='hot': expected a number"),
    ("LLAMACPP_SERVER_TOP_P", "1.5", "LLAMACPP_SERVER_TOP_P=1.5: must be between 0.0 and 1.0"),
    ("LLAMACPP_SERVER_MODEL", "/nope/model.gguf", "LLAMACPP_SERVER_MODEL=/nope/model.gguf: no such file"),
    ("LLAMACPP_SERVER_BIN", "/nope/llama-server", "LLAMACPP_SERVER_BIN=/nope/llama-server: no such file"),
])
def test_bad_setting_names_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(settings.SettingsError, match="^" + __import__("re").escape(says)):
        settings.load({name: value})


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamacpp_server", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_serve_with_a_bad_setting_exits_2_naming_it() -> None:
    done = run_cli("serve", "--port", "1", env={"LLAMACPP_SERVER_THREADS": "-1"})
    assert done.returncode == 2
    assert done.stderr.strip() == "llamacpp-server: error: LLAMACPP_SERVER_THREADS=-1: must be at least 1"


def test_serve_before_the_build_says_how_to_build(tmp_path: Path) -> None:
    done = run_cli("serve", env={"LLAMACPP_SERVER_CACHE": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "llama-server is not built for this CPU yet" in done.stderr
    assert "uv run llamacpp-server prepare" in done.stderr and str(tmp_path) in done.stderr


def test_serve_refuses_a_host_name() -> None:
    done = run_cli("serve", "--host", "localhost", env={})
    assert done.returncode == 2 and "--host must be an IP address, got 'localhost'" in done.stderr


def test_prepare_with_a_given_binary_builds_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    done = run_cli("prepare", env={"LLAMACPP_SERVER_BIN": str(fake), "LLAMACPP_SERVER_CACHE": str(tmp_path / "c")})
    assert done.returncode == 0, done.stderr
    assert "nothing to build" in done.stdout and not (tmp_path / "c").exists()


def test_serve_execs_so_a_native_crash_is_the_process_own_signal(tmp_path: Path) -> None:
    """No Python wrapper stays between supervisord/systemd and llama-server: what the binary dies
    of is what its supervisor sees (`homelab status`: "exit 139 = SIGSEGV" through `uv run`)."""
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho \"args: $*\"\nkill -SEGV $$\n")
    fake.chmod(0o755)
    done = run_cli("serve", "--port", "4999", env={"LLAMACPP_SERVER_BIN": str(fake)})
    assert done.returncode == -11, (done.returncode, done.stdout, done.stderr)
    assert "--port 4999" in done.stdout and "--alias jerry-chat-lcpp" in done.stdout
