"""Model lifecycle: load the registry, start one engine process per model, restart engines that
die, hot-reload on registry change, and say on /health which model serves and which does not.

One background thread does every load, in order, so the HTTP server answers at once. The registry
file is polled (mtime, size, content) rather than watched with inotify: it works the same on every
filesystem and costs nothing at a 1 s interval.

Per model (`ModelState.state`):
- `loading`: no engine yet (first load of a new model);
- `ok`: an engine serves it (a changed registry entry loads in a new engine beside it and replaces
  it only once ready; a failed change keeps it serving and shows `reload_error`);
- `restarting`: its engine died (signal, abort, OOM) or its pipeline broke; a new one starts after
  a backoff (0.5 s doubling to 30 s; reset after a minute of serving);
- `failed`: it cannot load (a load error, or the engine died while loading MAX_LOAD_DEATHS times
  in a row); retried only when its registry entry changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings
from .cpu import detect
from .engine import Engine
from .engine_process import EngineDied, process_engine_factory
from .errors import APIError, summarize_exception
from .metrics import EngineGauges, NoMetrics, ServerMetrics
from .placement import engine_cpus
from .registry import ModelSpec, default_registry, load_registry

log = logging.getLogger("ov_server.models")

EngineFactory = Callable[[str, ModelSpec, Path], Engine]

MAX_LOAD_DEATHS = 3
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0


def desired_models(settings: Settings) -> dict[str, ModelSpec]:
    """The models to serve: the registry file's, or the built-in ones when there is none."""
    path = settings.registry_path
    return default_registry() if path is None else load_registry(path)


def backoff(failures: int) -> float:
    return min(BACKOFF_BASE_S * 2 ** max(failures - 1, 0), BACKOFF_MAX_S)


@dataclass
class ModelState:
    spec: ModelSpec
    engine: Engine | None = None
    state: str = "loading"  # loading | ok | restarting | failed
    error: str | None = None  # why it does not serve
    reload_error: str | None = None  # why the latest registry change did not apply (the old one serves)
    pending: ModelSpec | None = None  # a changed spec to load while the old engine serves
    load_deaths: int = 0  # consecutive engine deaths before ready
    failures: int = 0  # consecutive unexpected engine ends: sets the backoff
    restarts: int = 0
    retry_at: float | None = 0.0  # monotonic time of the next load attempt; None = none planned
    served_since: float = 0.0


class ModelManager:
    def __init__(self, settings: Settings, engine_factory: EngineFactory | None = None,
                 log_level: str = "INFO", metrics: ServerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics: ServerMetrics = metrics or NoMetrics()
        self._factory = engine_factory
        self._log_level = log_level
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._models: dict[str, ModelState] = {}
        self.registry_error: str | None = None
        self.started = False  # every model had its first load attempt
        self._fingerprint: tuple | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = detect().report()

    # -- public ------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._factory is None:
            self._factory = process_engine_factory(loop or asyncio.get_running_loop(), self._log_level,
                                                   byte_vocab=self.settings.detokenizer == "auto",
                                                   stream_interval_s=self.settings.stream_interval_ms / 1000,
                                                   placement=self.engine_cpus)
        self._thread = threading.Thread(target=self._run, name="model-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Server shutdown: stop every engine process (blocking, bounded)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            engines = [st.engine for st in self._models.values() if st.engine is not None]
            self._models.clear()
        for e in engines:
            terminate = getattr(e, "terminate", None)
            (terminate or e.close)()

    def engine_cpus(self, model_id: str, spec: ModelSpec) -> tuple[int, ...] | None:
        """Where `model_id`'s engine may run, given the whole registry (placement.py)."""
        with self._lock:
            specs = {mid: st.pending or st.spec for mid, st in self._models.items()}
        specs[model_id] = spec
        return engine_cpus(model_id, specs, sorted(os.sched_getaffinity(0)))

    def get(self, model_id: str) -> Engine:
        with self._lock:
            st = self._models.get(model_id)
            if st is None:
                raise APIError(404, f"The model '{model_id}' does not exist. See GET /v1/models.",
                               param="model", code="model_not_found")
            if st.engine is not None:
                return st.engine
            if st.state == "loading":
                raise APIError(503, f"model '{model_id}' is still loading", param="model", code="model_loading")
            if st.state == "restarting":
                wait = max(0.0, (st.retry_at or 0.0) - time.monotonic())
                raise APIError(503, f"{st.error}; restarting it in {wait:.1f} s", param="model",
                               code="model_unavailable")
            raise APIError(503, f"model '{model_id}' is down: {st.error}", param="model", code="model_unavailable")

    def model_ids(self) -> list[str]:
        with self._lock:
            return sorted(m for m, st in self._models.items() if st.engine is not None)

    def health(self) -> tuple[int, dict]:
        """(HTTP status, body). 200 while at least one model serves ("ok", or "degraded" when
        another is down: the mesh's health sweep must not call the whole backend down for one
        model; `homelab health --models` reads the per-model states); 503 while the first load
        runs or when no model serves."""
        with self._lock:
            models = {mid: self._model_health(st) for mid, st in sorted(self._models.items())}
        body: dict[str, Any] = {"models": models, "cpu": self._cpu}
        if self.registry_error:
            body["registry_error"] = self.registry_error
        down = {mid: m.get("error") or m["state"] for mid, m in models.items() if m["state"] != "ok"}
        if not self.started:
            loading = [mid for mid, m in models.items() if m["state"] == "loading"] or ["registry"]
            body.update(status="loading", reason="loading models: " + ", ".join(loading))
            return 503, body
        if down:
            body["errors"] = down
            body["reason"] = "; ".join(f"model '{m}': {why}" for m, why in down.items())
        if not models:
            body.update(status="error", reason="no model configured")
            return 503, body
        if len(down) == len(models):
            body["status"] = "error"
            return 503, body
        body["status"] = "degraded" if down else "ok"
        return 200, body

    def gauges(self) -> list[EngineGauges]:
        """Each model's engine-side figures for /metrics (read at scrape time)."""
        with self._lock:
            states = sorted(self._models.items())
        out = []
        for model_id, st in states:
            e = st.engine
            if e is None:
                out.append(EngineGauges(model_id, loaded=False))
                continue
            running, waiting, kv = getattr(e, "stats", (e.active, 0, 0.0))
            out.append(EngineGauges(model_id, loaded=True, running=running, waiting=waiting, kv_cache_usage=kv))
        return out

    def served(self, model_id: object) -> str:
        """`model_id` if it is a configured model, else the metrics' `unknown` (bounded labels)."""
        with self._lock:
            return model_id if isinstance(model_id, str) and model_id in self._models else "unknown"

    # -- health ------------------------------------------------------------
    @staticmethod
    def _model_health(st: ModelState) -> dict[str, Any]:
        out: dict[str, Any] = {"state": st.state, "device": st.spec.device, "restarts": st.restarts}
        if st.error and st.state != "ok":
            out["error"] = st.error
        if st.reload_error:
            out["reload_error"] = st.reload_error
        e = st.engine
        if e is not None:
            out.update(context_length=e.context_length, active_requests=e.active, generated_tokens=e.generated_tokens)
            info = getattr(e, "info", None)
            if info:
                out.update({k: info[k] for k in ("pid", "cpus", "properties", "precision", "precision_notes",
                                                 "load_seconds", "converted_from_cache")
                            if k in info})
        return out

    # -- the manager thread --------------------------------------------------
    def _run(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                fp = self._read_fingerprint()
                if fp != self._fingerprint:
                    self._fingerprint = fp
                    self._reload()
                next_poll = now + self.settings.reload_interval
            for model_id in self._due():
                if self._stop.is_set():
                    return
                self._load(model_id)
            self.started = True
            with self._lock:
                retries = [st.retry_at for st in self._models.values() if st.retry_at is not None]
            wait = min([next_poll, *retries]) - time.monotonic()
            if self.settings.registry_path is None and not retries:
                wait = 3600.0  # nothing to poll; a death wakes us
            self._wake.wait(max(wait, 0.0))
            self._wake.clear()

    def _due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [m for m, st in self._models.items() if st.retry_at is not None and st.retry_at <= now]

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
        return desired_models(self.settings)

    def _reload(self) -> None:
        try:
            desired = self._desired()
        except ConfigError as exc:
            # Keep serving what is loaded; report the problem on /health.
            log.error("%s (keeping the current models)", exc)
            self.registry_error = str(exc)
            return
        self.registry_error = None
        closing: list[Engine] = []
        with self._lock:
            for model_id in [m for m in self._models if m not in desired]:
                st = self._models.pop(model_id)
                if st.engine is not None:
                    closing.append(st.engine)  # requests in flight finish first
                    log.info("unloading model %s", model_id)
            for model_id, spec in desired.items():
                st = self._models.get(model_id)
                if st is None:
                    self._models[model_id] = ModelState(spec)
                elif spec != (st.pending or st.spec) or st.state == "failed":  # an edit retries a failed model
                    if st.engine is not None:
                        st.pending = spec  # the old engine serves until the new one is ready
                    else:
                        self._models[model_id] = ModelState(spec)
                    st.retry_at = 0.0
        for engine in closing:
            engine.close()

    def _load(self, model_id: str) -> None:
        with self._lock:
            st = self._models.get(model_id)
            if st is None:
                return
            spec = st.pending or st.spec
            st.retry_at = None
        t0 = time.perf_counter()
        try:
            assert self._factory is not None
            engine = self._factory(model_id, spec, self.settings.model_dir)
        except EngineDied as exc:
            self._load_failed(model_id, spec, f"engine for {model_id} died while loading: {exc}", died=True)
            return
        except Exception as exc:  # a bad model or device must not take the server down
            self._load_failed(model_id, spec, f"failed to load: {summarize_exception(exc)}", died=False)
            return
        with self._lock:
            st = self._models.get(model_id)
            current = st is not None and (st.pending or st.spec) == spec
            old = None
            if current:
                assert st is not None
                old, st.engine = st.engine, engine
                st.spec, st.pending = spec, None
                st.state, st.error, st.reload_error = "ok", None, None
                st.load_deaths = 0
                st.served_since = time.monotonic()
        if not current:  # removed or changed again while loading
            engine.close()
            return
        hook = getattr(engine, "on_exit", None)
        if hook is not None:
            hook(self._engine_exited)
        if old is not None:
            old.close()  # in-flight requests on the old engine still finish
        log.info("loaded model %s in %.2fs", model_id, time.perf_counter() - t0)

    def _load_failed(self, model_id: str, spec: ModelSpec, why: str, died: bool) -> None:
        log.error("model %s: %s", model_id, why)
        with self._lock:
            st = self._models.get(model_id)
            if st is None or (st.pending or st.spec) != spec:
                return
            if st.engine is not None:  # a registry change that failed: the old model keeps serving
                st.pending = None
                st.reload_error = why
                return
            if not died:
                st.state, st.error = "failed", why
                return
            st.load_deaths += 1
            if st.load_deaths >= MAX_LOAD_DEATHS:
                st.state = "failed"
                st.error = f"{why} ({st.load_deaths} times in a row; not retried until its registry entry changes)"
                return
            st.state, st.error = "restarting", why
            st.retry_at = time.monotonic() + backoff(st.load_deaths)
            self.metrics.engine_restart(model_id, "load_died")

    def _engine_exited(self, engine: Engine, why: str) -> None:
        """From the event loop: an engine ended unexpectedly; plan its restart."""
        with self._lock:
            st = self._models.get(engine.model_id)
            if st is None or st.engine is not engine:
                return  # replaced or removed meanwhile
            now = time.monotonic()
            st.engine = None
            st.failures = 1 if now - st.served_since > STABLE_S else st.failures + 1
            st.restarts += 1
            self.metrics.engine_restart(engine.model_id, getattr(engine, "exit_kind", None) or "exit_code")
            st.state, st.error = "restarting", why
            st.retry_at = now + backoff(st.failures)
        self._wake.set()
