"""The built-in model is written locally, deterministically and idempotently."""

import hashlib
import subprocess
import sys

from ov_server.tiny_model import CHAT_TEMPLATE, FILE_NAME, build_tiny_model


def digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_is_deterministic_and_idempotent(tmp_path):
    a = build_tiny_model(tmp_path / "a")
    b = build_tiny_model(tmp_path / "b" / "custom.gguf")
    assert a.name == FILE_NAME and b.name == "custom.gguf"
    assert digest(a) == digest(b)
    mtime = a.stat().st_mtime_ns
    assert build_tiny_model(tmp_path / "a") == a
    assert a.stat().st_mtime_ns == mtime  # identical file left alone
    assert 100_000 < a.stat().st_size < 1_000_000
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_cli_prints_path(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ov_server.cli", "build-tiny-model", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / FILE_NAME)


def test_template_is_chatml_with_tools():
    assert "<|im_start|>" in CHAT_TEMPLATE and "<tool_call>" in CHAT_TEMPLATE


def test_no_telemetry_files_written(tmp_path):
    """Importing the server and loading a model must not write under $HOME."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    code = ("import ov_server; from pathlib import Path; from ov_server.engine import OVEngine; "
            "from ov_server.registry import builtin_spec; "
            f"e = OVEngine('jerry-tiny', builtin_spec(), Path({str(tmp_path / 'm')!r})); e.close()")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert list((tmp_path / "home").iterdir()) == []
