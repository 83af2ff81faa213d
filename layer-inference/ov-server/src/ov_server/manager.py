"""Model lifecycle: load the registry, build engines, hot-reload on change.

Loading happens in a background thread so the HTTP server answers at once
(`/health` says 503 "loading" until every model is ready). The registry file
is polled (mtime, size, content) rather than watched with inotify: it works
the same on every filesystem and costs nothing at a 1 s interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError, Settings
from .engine import Engine, ov_engine_factory
from .errors import APIError, summarize_exception
from .registry import ModelSpec, default_registry, load_registry

log = logging.getLogger("ov_server.models")

EngineFactory = Callable[[str, ModelSpec, Path], Engine]


class ModelManager:
    def __init__(self, settings: Settings, engine_factory: EngineFactory = ov_engine_factory) -> None:
        self.settings = settings
        self._factory = engine_factory
        self._lock = threading.Lock()
        self._engines: dict[str, Engine] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._errors: dict[str, str] = {}
        self._loading: set[str] = set()
        self.registry_error: str | None = None
        self.started = False  # first load finished
        self._fingerprint: tuple | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="model-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            engines = list(self._engines.values())
        for e in engines:
            e.close()

    def get(self, model_id: str) -> Engine:
        with self._lock:
            engine = self._engines.get(model_id)
            if engine is not None:
                return engine
            if model_id in self._loading or (not self.started and model_id in self._specs):
                raise APIError(503, f"model '{model_id}' is still loading", param="model", code="model_loading")
            if model_id in self._errors:
                raise APIError(
                    503, f"model '{model_id}' failed to load: {self._errors[model_id]}", param="model", code="model_unavailable"
                )
        raise APIError(
            404, f"The model '{model_id}' does not exist. See GET /v1/models.", param="model", code="model_not_found"
        )

    def model_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._engines)

    def health(self) -> tuple[bool, dict]:
        with self._lock:
            models = {
                mid: {"device": self._specs[mid].device if mid in self._specs else None,
                      "context_length": e.context_length, "active_requests": e.active,
                      "generated_tokens": e.generated_tokens}
                for mid, e in sorted(self._engines.items())
            }
            errors = dict(self._errors)
            loading = sorted(self._loading)
        body: dict = {"models": models}
        if self.registry_error:
            body["registry_error"] = self.registry_error
        if not self.started or loading:
            body.update(status="loading", reason="loading models: " + ", ".join(loading or ["registry"]))
            return False, body
        if errors:
            body.update(status="error", reason="; ".join(f"model '{k}' failed to load: {v}" for k, v in errors.items()),
                        errors=errors)
            return False, body
        if not models:
            body.update(status="error", reason="no model loaded")
            return False, body
        body["status"] = "ok"
        return True, body

    # -- internals -----------------------------------------------------------
    def _read_fingerprint(self) -> tuple | None:
        path = self.settings.registry_path
        if path is None:
            return ("builtin",)
        try:
            st = path.stat()
            return (st.st_mtime_ns, st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            return ("missing",)

    def _desired(self) -> dict[str, ModelSpec]:
        path = self.settings.registry_path
        return default_registry() if path is None else load_registry(path)

    def _loop(self) -> None:
        while not self._stop.is_set():
            fp = self._read_fingerprint()
            if fp != self._fingerprint:
                self._fingerprint = fp
                self._reload()
            self.started = True
            if self.settings.registry_path is None:
                return  # nothing to watch
            self._stop.wait(self.settings.reload_interval)

    def _reload(self) -> None:
        try:
            desired = self._desired()
        except ConfigError as exc:
            # Keep serving what is loaded; report the problem on /health.
            log.error("%s (keeping the current models)", exc)
            self.registry_error = str(exc)
            return
        self.registry_error = None
        with self._lock:
            removed = [m for m in self._specs if m not in desired]
            changed = {m: s for m, s in desired.items() if self._specs.get(m) != s or m in self._errors}
            self._loading.update(changed)
            for m in removed:
                self._specs.pop(m, None)
                self._errors.pop(m, None)
                engine = self._engines.pop(m, None)
                if engine is not None:
                    engine.close()
                    log.info("unloaded model %s", m)
            for m, s in changed.items():
                self._specs[m] = s
        for model_id, spec in changed.items():
            t0 = time.perf_counter()
            try:
                engine = self._factory(model_id, spec, self.settings.model_dir)
            except Exception as exc:  # a bad model must not take the server down
                msg = summarize_exception(exc)
                log.error("model %s failed to load: %s", model_id, msg)
                with self._lock:
                    self._loading.discard(model_id)
                    self._errors[model_id] = msg
                    old = self._engines.pop(model_id, None)
                if old is not None:
                    old.close()
                continue
            with self._lock:
                old = self._engines.get(model_id)
                self._engines[model_id] = engine
                self._errors.pop(model_id, None)
                self._loading.discard(model_id)
            if old is not None:
                old.close()  # in-flight requests on the old engine still finish
            log.info("loaded model %s in %.2fs", model_id, time.perf_counter() - t0)
