"""Settings: an env file (KEY=VALUE lines) plus real environment variables.

Real environment variables win over the file, so systemd's EnvironmentFile,
a shell export and the file all agree. A missing *default* env file is fine
(fresh machine); a missing file that was asked for explicitly is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from meshkit.envfile import EnvFileError, read

DEFAULT_ENV_FILE = "/etc/homelab-llm/ov-server.env"
DEFAULT_MODEL_DIR = "~/.cache/homelab-llm/models"


class ConfigError(Exception):
    """A user-facing configuration problem (printed without a traceback)."""


DETOKENIZERS = ("auto", "model")
# A stream's tokens go out at least this often (outbox.py); "a few ms of tokens" per chunk at most.
DEFAULT_STREAM_INTERVAL_MS = 2.0
MAX_STREAM_INTERVAL_MS = 50.0


@dataclass(frozen=True)
class Settings:
    registry_path: Path | None
    model_dir: Path
    api_key: str | None
    env_file: Path | None
    reload_interval: float = 1.0
    metrics: bool = True  # OV_SERVER_METRICS=0: no /metrics and no counting (the bench's baseline)
    detokenizer: str = "auto"  # OV_SERVER_DETOKENIZER: auto (vocabulary table when exact) | model
    stream_interval_ms: float = DEFAULT_STREAM_INTERVAL_MS  # OV_SERVER_STREAM_INTERVAL_MS (0: a frame per step)


def load_settings(env_file: str | None = None, registry: str | None = None) -> Settings:
    explicit = env_file or os.environ.get("OV_SERVER_ENV_FILE")
    path = Path(explicit or DEFAULT_ENV_FILE).expanduser()
    file_values: dict[str, str] = {}
    if path.is_file():
        try:
            file_values = read(path)  # meshkit's parser: the one `homelab up` and start.sh use
        except EnvFileError as exc:
            raise ConfigError(f"env file {exc}") from None
    elif explicit:
        raise ConfigError(f"env file {path}: not found (from --env-file / OV_SERVER_ENV_FILE)")
    else:
        path = None  # type: ignore[assignment]

    def get(name: str) -> str | None:
        value = os.environ.get(name, file_values.get(name))
        return value if value else None

    registry_value = registry or get("OV_SERVER_REGISTRY")
    interval = get("OV_SERVER_RELOAD_INTERVAL") or "1.0"
    try:
        reload_interval = float(interval)
    except ValueError:
        raise ConfigError(f"OV_SERVER_RELOAD_INTERVAL: not a number: {interval!r}") from None
    metrics_value = (get("OV_SERVER_METRICS") or "1").lower()
    if metrics_value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"OV_SERVER_METRICS: expected 1 or 0, got {metrics_value!r}")
    detokenizer = (get("OV_SERVER_DETOKENIZER") or "auto").lower()
    if detokenizer not in DETOKENIZERS:
        raise ConfigError(f"OV_SERVER_DETOKENIZER: expected one of {', '.join(DETOKENIZERS)}, got {detokenizer!r}")
    interval_value = get("OV_SERVER_STREAM_INTERVAL_MS") or str(DEFAULT_STREAM_INTERVAL_MS)
    try:
        stream_interval_ms = float(interval_value)
    except ValueError:
        stream_interval_ms = -1.0
    if not 0 <= stream_interval_ms <= MAX_STREAM_INTERVAL_MS:  # also NaN
        raise ConfigError(f"OV_SERVER_STREAM_INTERVAL_MS: expected milliseconds from 0 to "
                          f"{MAX_STREAM_INTERVAL_MS:g}, got {interval_value!r}")
    return Settings(
        registry_path=Path(registry_value).expanduser() if registry_value else None,
        model_dir=Path(get("OV_SERVER_MODEL_DIR") or DEFAULT_MODEL_DIR).expanduser(),
        api_key=get("OV_SERVER_API_KEY"),
        env_file=path,
        reload_interval=max(0.1, reload_interval),
        metrics=metrics_value in ("1", "true", "yes", "on"),
        detokenizer=detokenizer,
        stream_interval_ms=stream_interval_ms,
    )
