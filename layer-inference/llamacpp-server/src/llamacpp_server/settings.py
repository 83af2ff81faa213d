"""What llama-server runs with, from the environment (the env file under systemd, the contract's
env under `homelab up`), checked before anything starts: a bad value names its variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llamacpp_server.model import builtin_model_path

# The id the gateway sends as `model` (contract models[].upstream_id): llama-server's --alias.
UPSTREAM_ID = "jerry-chat-lcpp"


class SettingsError(ValueError):
    """A setting is unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    model: Path
    api_key: str | None
    parallel: int
    context: int
    threads: int
    chat_template: str | None  # None: the GGUF's own template
    max_tokens: int
    temperature: float
    top_p: float
    binary: Path | None  # LLAMACPP_SERVER_BIN: a llama-server to run instead of the built one
    # LLAMACPP_SERVER_PRESETS: router mode, one model per section of this INI file (presets.py);
    # None: one model, LLAMACPP_SERVER_MODEL, as before.
    presets: Path | None = None


def _int(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < low:
        raise SettingsError(f"{name}={value}: must be at least {low}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value}: must be between {low} and {high}")
    return value


def _file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(f"{name}={raw}: no such file")
    return path


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    model = _file(env, "LLAMACPP_SERVER_MODEL")
    if model is None:
        try:
            model = builtin_model_path()
        except FileNotFoundError as exc:
            raise SettingsError(str(exc)) from None
    template = env.get("LLAMACPP_SERVER_CHAT_TEMPLATE", "chatml").strip()
    return Settings(
        model=model,
        api_key=env.get("LLAMACPP_SERVER_API_KEY", "").strip() or None,
        # 4 slots share one 8192-token KV pool (--kv-unified): any slot may use the model's whole
        # context while the others are idle.
        parallel=_int(env, "LLAMACPP_SERVER_PARALLEL", 4, 1),
        context=_int(env, "LLAMACPP_SERVER_CONTEXT", 8192, 256),
        # One thread by default: on 2 shared cores llama.cpp's spinning threads collapse when the
        # other core is busy (SmolLM2: 8-17 tok/s at -t 2 vs ~86 at -t 1, ov-server bench).
        threads=_int(env, "LLAMACPP_SERVER_THREADS", 1, 1),
        # SmolLM2's own template fails llama-server's Jinja parser; it is ChatML anyway.
        chat_template=None if template in ("", "gguf") else template,
        # jerry-chat's defaults (ov-server's built-in entry): a 135M model loops on long answers.
        max_tokens=_int(env, "LLAMACPP_SERVER_MAX_TOKENS", 128, 1),
        temperature=_float(env, "LLAMACPP_SERVER_TEMPERATURE", 0.2, 0.0, 2.0),
        top_p=_float(env, "LLAMACPP_SERVER_TOP_P", 0.9, 0.0, 1.0),
        binary=_file(env, "LLAMACPP_SERVER_BIN"),
        presets=_presets(env),
    )


def _presets(env: Mapping[str, str]) -> Path | None:
    raw = env.get("LLAMACPP_SERVER_PRESETS", "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.parent.is_dir():  # the file itself is written by `serve` when missing
        raise SettingsError(f"LLAMACPP_SERVER_PRESETS={raw}: folder {path.parent} does not exist")
    return path


def command(binary: Path, settings: Settings, host: str, port: int) -> list[str]:
    """llama-server's argv. The key is NOT here (argv is world-readable in /proc): see child_env.

    With a presets file it is llama-server's router: no model of its own, one child llama-server
    per preset section, started on the first request for its name (or at start: load-on-startup);
    the router's own arguments below apply to every child (llama.cpp: they override the presets)."""
    if settings.presets is not None:
        head = ["--models-preset", str(settings.presets)]
    else:
        head = ["--model", str(settings.model), "--alias", UPSTREAM_ID]
    return [str(binary), *head, "--host", host, "--port", str(port), *model_args(settings)]


def model_args(settings: Settings) -> list[str]:
    """How every model is run: slots, KV pool, threads, sampling defaults, chat template."""
    args = ["--parallel", str(settings.parallel), "--kv-unified", "--cont-batching",
            "--ctx-size", str(settings.context), "--threads", str(settings.threads),
            "--n-predict", str(settings.max_tokens), "--temp", str(settings.temperature),
            "--top-p", str(settings.top_p), "--no-webui"]
    if settings.chat_template:
        args += ["--chat-template", settings.chat_template]
    return args


def child_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """llama-server's environment: LLAMA_API_KEY (its own variable) carries the gateway's key."""
    out = {k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("LLAMA_")}
    if settings.api_key:
        out["LLAMA_API_KEY"] = settings.api_key
    return out
