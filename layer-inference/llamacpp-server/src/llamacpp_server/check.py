"""`check-model FILE`: does this GGUF load in llama-server, with the settings every model runs
with? Used by `homelab models add` before a file is registered (nothing is changed if it fails).

A llama-server of its own on a free loopback port: /health 200 means loaded; an exit, or no 200
in the time allowed, is a refusal with llama.cpp's own reason (its last error lines)."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

from llamacpp_server import settings as settings_mod


class NotLoadable(RuntimeError):
    """The file does not load; the message is llama.cpp's reason."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _reason(log: str) -> str:
    """llama.cpp's first error line is the cause (`gguf_init_from_reader: invalid magic ...`); the
    later ones only say that loading failed. Its log prefix (time, level) is dropped."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [re.sub(r"^[\d.]+ E\s+", "", ln) for ln in lines if re.match(r"^[\d.]+ E\s", ln)]
    return errors[0] if errors else (lines[-1] if lines else "no output")


def check_model(binary: Path, conf: settings_mod.Settings, path: Path, timeout_s: float) -> float:
    """Seconds it took to load; NotLoadable otherwise. The server is always stopped."""
    if not path.is_file():
        raise NotLoadable(f"{path}: no such file")
    one = replace(conf, model=path, presets=None, parallel=1, context=min(conf.context, 2048))
    port = _free_port()
    argv = settings_mod.command(binary, one, "127.0.0.1", port)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=settings_mod.child_env(replace(one, api_key=None)))
        try:
            while True:
                if _healthy(port):
                    return time.monotonic() - t0
                if proc.poll() is not None:
                    log.seek(0)
                    raise NotLoadable(f"llama-server exited ({proc.returncode}): {_reason(log.read())}")
                if time.monotonic() - t0 > timeout_s:
                    log.seek(0)
                    raise NotLoadable(f"not loaded after {timeout_s:.0f} s: {_reason(log.read())}")
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
