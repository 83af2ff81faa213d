"""The gateway's own settings: the body limit (contract env) and what it reads from router.yaml.

Resolved once per process, by the launcher (to refuse bad values before any worker starts) and by
each worker's app factory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

MAX_BODY_ENV = "LITELLM_ORCH_MAX_BODY_BYTES"
CONFIG_ENV = "LITELLM_ORCH_CONFIG"  # set by the launcher for its workers
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a 128k-token conversation is ~0.5 MB of text


class SettingsError(ValueError):
    """A setting the gateway cannot start with; the message names the file or variable."""


@dataclass(frozen=True)
class GatewaySettings:
    max_body_bytes: int
    models: frozenset[str]  # public names in model_list
    upstreams: frozenset[str]  # host:port (and host) of every api_base: never shown to clients
    timeout_s: float | None  # router-wide timeout
    model_timeouts: tuple[tuple[str, float], ...] = ()  # a deployment's own `timeout`, by public name

    def timeout_for(self, model: str) -> float | None:
        return dict(self.model_timeouts).get(model, self.timeout_s)

    @classmethod
    def load(cls, config_path: str | Path, environ: dict[str, str] | None = None) -> GatewaySettings:
        env = os.environ if environ is None else environ
        return cls(max_body_bytes=max_body_bytes(env), **_from_config(Path(config_path)))

    @classmethod
    def from_env(cls) -> GatewaySettings:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise SettingsError(f"{CONFIG_ENV} is not set (the launcher sets it: run scripts/start.sh)")
        return cls.load(path)


def max_body_bytes(env: dict[str, str] | os._Environ[str]) -> int:
    raw = env.get(MAX_BODY_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    if not raw.isdigit() or int(raw) < 1024:
        raise SettingsError(f"{MAX_BODY_ENV} must be a whole number of bytes, at least 1024; got {raw!r}")
    return int(raw)


def _from_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SettingsError(f"{path}{where}: not valid YAML") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_list"), list):
        raise SettingsError(f"{path}: expected a mapping with a 'model_list' list")
    models, upstreams, timeouts = set(), set(), {}
    for i, entry in enumerate(config["model_list"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            raise SettingsError(f"{path}: model_list[{i}].model_name must be a string")
        models.add(entry["model_name"])
        params = entry.get("litellm_params") or {}
        if isinstance(params.get("timeout"), (int, float)):
            timeouts[entry["model_name"]] = float(params["timeout"])
        base = params.get("api_base")
        if isinstance(base, str) and base and not base.startswith("os.environ/"):
            parts = urlsplit(base)
            if parts.netloc:
                upstreams.add(parts.netloc)
                if parts.hostname and parts.hostname not in ("localhost",):
                    upstreams.add(parts.hostname)
    timeout = (config.get("router_settings") or {}).get("timeout") or \
        (config.get("litellm_settings") or {}).get("request_timeout")
    return {"models": frozenset(models), "upstreams": frozenset(upstreams),
            "timeout_s": float(timeout) if isinstance(timeout, (int, float)) else None,
            "model_timeouts": tuple(sorted(timeouts.items()))}
