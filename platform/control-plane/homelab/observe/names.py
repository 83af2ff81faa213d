"""The metric names the mesh's services export: the one place they are spelled.

`homelab top`, the rendered Grafana dashboard and the tests that scrape real services all read
them from here; a renamed metric in a service fails those tests instead of leaving an empty graph.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """The metrics one kind of exporter publishes (None: it does not publish that figure).

    Counters are named with their `_total` suffix, histograms by their base name (the exporter
    adds `_bucket`, `_sum` and `_count`).
    """

    prefix: str
    requests: str  # counter, labels {model, status}
    request_duration: str  # histogram, seconds, label {model}
    time_to_first_token: str  # histogram, seconds, label {model}
    prompt_tokens: str | None = None  # counter, label {model}
    completion_tokens: str | None = None  # counter, label {model}
    time_per_output_token: str | None = None  # histogram, seconds, label {model}
    running: str | None = None  # gauge, label {model}
    waiting: str | None = None  # gauge, label {model}: the queue
    kv_cache_usage: str | None = None  # gauge 0..1, label {model}
    engine_restarts: str | None = None  # counter, labels {model, cause}
    model_loaded: str | None = None  # gauge 0/1, label {model}
    in_flight: str | None = None  # gauge, no labels

    def counters(self) -> list[str]:
        return [n for n in (self.requests, self.prompt_tokens, self.completion_tokens,
                            self.engine_restarts) if n]

    def histograms(self) -> list[str]:
        return [n for n in (self.request_duration, self.time_to_first_token,
                            self.time_per_output_token) if n]

    def gauges(self) -> list[str]:
        return [n for n in (self.running, self.waiting, self.kv_cache_usage, self.model_loaded,
                            self.in_flight) if n]

    def all(self) -> list[str]:
        return [*self.counters(), *self.histograms(), *self.gauges()]


OV_SERVER = Family(
    prefix="ov_server",
    requests="ov_server_requests_total",
    request_duration="ov_server_request_duration_seconds",
    time_to_first_token="ov_server_time_to_first_token_seconds",
    prompt_tokens="ov_server_prompt_tokens_total",
    completion_tokens="ov_server_completion_tokens_total",
    time_per_output_token="ov_server_time_per_output_token_seconds",
    running="ov_server_running_sequences",
    waiting="ov_server_waiting_sequences",
    kv_cache_usage="ov_server_kv_cache_usage_ratio",
    engine_restarts="ov_server_engine_restarts_total",
    model_loaded="ov_server_model_loaded",
)

GATEWAY = Family(
    prefix="gateway",
    requests="gateway_requests_total",
    request_duration="gateway_request_duration_seconds",
    time_to_first_token="gateway_time_to_first_token_seconds",
    in_flight="gateway_in_flight_requests",
)

FAMILIES: tuple[Family, ...] = (GATEWAY, OV_SERVER)
