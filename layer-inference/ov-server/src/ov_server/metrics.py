"""Prometheus metrics of the HTTP process (`GET /metrics`, text format via prometheus_client).

The names are a contract with the mesh's Prometheus scrape, its Grafana dashboard and
`homelab top`: never rename one. Counters and histograms are updated once per request (a few
microseconds, `bench/bench_server.py --metrics` prints the ratio); the engine-side gauges
(running/waiting sequences, KV cache use, model loaded) are read from the manager's state when
scraped, from figures each engine process sends over its channel at most every
`STATS_INTERVAL_S` (`engine_worker`). Each server has its own registry (not prometheus_client's
global one), so several apps in one process (tests) never collide.

`model` labels are the served model ids only: a request for an unknown model is counted under
`model="unknown"`, so a client cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_MODEL = "unknown"

# Seconds: a tiny model's first token comes in milliseconds, a big model's prefill in seconds.
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class EngineGauges:
    """One model's engine-side figures at scrape time."""

    model: str
    loaded: bool
    running: int = 0
    waiting: int = 0
    kv_cache_usage: float = 0.0  # 0..1


class _EngineCollector(Collector):
    def __init__(self, read: Callable[[], Iterable[EngineGauges]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = GaugeMetricFamily("ov_server_model_loaded", "1 while an engine serves the model, else 0",
                                   labels=["model"])
        running = GaugeMetricFamily("ov_server_running_sequences",
                                    "Sequences the engine scheduled in its latest step", labels=["model"])
        waiting = GaugeMetricFamily("ov_server_waiting_sequences",
                                    "Sequences in the engine that its latest step did not schedule",
                                    labels=["model"])
        kv = GaugeMetricFamily("ov_server_kv_cache_usage_ratio",
                               "Share of the engine's KV cache blocks in use (0..1; of the current pool "
                               "when the cache grows on demand)", labels=["model"])
        for g in self._read():
            loaded.add_metric([g.model], 1.0 if g.loaded else 0.0)
            running.add_metric([g.model], float(g.running))
            waiting.add_metric([g.model], float(g.waiting))
            kv.add_metric([g.model], g.kv_cache_usage)
        yield from (loaded, running, waiting, kv)


class ServerMetrics:
    """Everything `/metrics` shows. `engines` reads the engine-side gauges at scrape time."""

    enabled = True

    def __init__(self, engines: Callable[[], Iterable[EngineGauges]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("ov_server_requests", "Chat completion requests by HTTP status",
                                ["model", "status"], registry=r)
        self.prompt_tokens = Counter("ov_server_prompt_tokens", "Prompt tokens of answered requests",
                                     ["model"], registry=r)
        self.completion_tokens = Counter("ov_server_completion_tokens",
                                         "Completion tokens generated (every choice)", ["model"], registry=r)
        self.ttft = Histogram("ov_server_time_to_first_token_seconds",
                              "Streamed requests: arrival to the first generated token", ["model"],
                              buckets=TTFT_BUCKETS, registry=r)
        self.tpot = Histogram("ov_server_time_per_output_token_seconds",
                              "Per choice: time between its first and last token over the tokens after the "
                              "first", ["model"], buckets=TPOT_BUCKETS, registry=r)
        self.duration = Histogram("ov_server_request_duration_seconds",
                                  "Whole request: arrival to the last byte (the end of the stream)", ["model"],
                                  buckets=DURATION_BUCKETS, registry=r)
        self.restarts = Counter("ov_server_engine_restarts",
                                "Unexpected engine ends that led to a restart, by cause (the signal name, "
                                "step_failed, hung, exit_code, load_died)", ["model", "cause"], registry=r)
        r.register(_EngineCollector(engines))

    def request_done(self, model: str, status: int, seconds: float, prompt_tokens: int = 0,
                     completion_tokens: int = 0) -> None:
        self.requests.labels(model, str(status)).inc()
        self.duration.labels(model).observe(seconds)
        if prompt_tokens:
            self.prompt_tokens.labels(model).inc(prompt_tokens)
        if completion_tokens:
            self.completion_tokens.labels(model).inc(completion_tokens)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def per_output_token(self, model: str, seconds: float) -> None:
        self.tpot.labels(model).observe(seconds)

    def engine_restart(self, model: str, cause: str) -> None:
        self.restarts.labels(model, cause).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class NoMetrics(ServerMetrics):
    """`OV_SERVER_METRICS=0`: every call does nothing and `/metrics` is a 404 (the bench's baseline)."""

    enabled = False

    def __init__(self) -> None:  # noqa: D107 - no registry at all
        pass

    def request_done(self, model: str, status: int, seconds: float, prompt_tokens: int = 0,
                     completion_tokens: int = 0) -> None:
        pass

    def first_token(self, model: str, seconds: float) -> None:
        pass

    def per_output_token(self, model: str, seconds: float) -> None:
        pass

    def engine_restart(self, model: str, cause: str) -> None:
        pass

    def render(self) -> bytes:
        return b""
