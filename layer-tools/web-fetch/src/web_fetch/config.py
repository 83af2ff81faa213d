"""Settings from the environment (the contract's env file), validated with clear errors."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from web_fetch.guard import AllowList

DEFAULT_MAX_BYTES = 2_000_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_REDIRECTS = 5
# Default cap on returned text: a small local model's context is a few thousand tokens.
DEFAULT_MAX_CHARS = 20_000
DEFAULT_WORKERS = 2  # extraction processes: one per core of the small machines this runs on
DEFAULT_WORKER_MEMORY_MB = 1024  # address space per extraction process; a 2 MB page peaks near 200 MB
DEFAULT_MAX_ELEMENTS = 50_000  # above this, all visible text instead of main-content detection


class ConfigError(ValueError):
    """A bad setting; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    allow: AllowList = field(default_factory=AllowList)
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    max_chars: int = DEFAULT_MAX_CHARS
    workers: int = DEFAULT_WORKERS
    worker_memory_mb: int = DEFAULT_WORKER_MEMORY_MB
    max_elements: int = DEFAULT_MAX_ELEMENTS


def _number(env: dict[str, str], name: str, default: float, kind: type, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if math.isnan(value) or value <= 0:
        raise ConfigError(f"{name} must be > 0, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    try:
        allow = AllowList.parse(env.get("WEB_FETCH_ALLOW", ""))
    except ValueError as exc:
        raise ConfigError(f"WEB_FETCH_ALLOW: {exc}") from None
    return Settings(
        allow=allow,
        max_bytes=int(_number(env, "WEB_FETCH_MAX_BYTES", DEFAULT_MAX_BYTES, int)),
        timeout_s=float(_number(env, "WEB_FETCH_TIMEOUT_S", DEFAULT_TIMEOUT_S, float)),
        max_redirects=int(_number(env, "WEB_FETCH_MAX_REDIRECTS", DEFAULT_MAX_REDIRECTS, int)),
        max_chars=int(_number(env, "WEB_FETCH_MAX_CHARS", DEFAULT_MAX_CHARS, int)),
        workers=int(_number(env, "WEB_FETCH_WORKERS", DEFAULT_WORKERS, int)),
        # Below ~256 MB a worker cannot even load its libraries.
        worker_memory_mb=int(_number(env, "WEB_FETCH_WORKER_MEMORY_MB", DEFAULT_WORKER_MEMORY_MB, int, minimum=256)),
        max_elements=int(_number(env, "WEB_FETCH_MAX_ELEMENTS", DEFAULT_MAX_ELEMENTS, int)),
    )
