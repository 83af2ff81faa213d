"""Figures from two scrapes of one service: rates, quantiles from histogram buckets, gauges.

Pure functions over parsed samples (exposition.Samples), so every figure `homelab top` prints is
unit-tested without a process.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from homelab.observe.exposition import Samples
from homelab.observe.names import Family

Buckets = list[tuple[float, float]]  # (upper bound `le`, cumulative count), +Inf last


def by_model(samples: Samples, name: str) -> dict[str, float]:
    """A counter or gauge summed per `model` label (over status, cause, ...)."""
    out: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        model = labels.get("model", "")
        out[model] = out.get(model, 0.0) + value
    return out


def errors_by_model(samples: Samples, name: str) -> dict[str, float]:
    """Requests whose `status` label is not a success (2xx, "ok", "success")."""
    out: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        status = labels.get("status", "")
        if status.startswith("2") or status in ("ok", "success"):
            continue
        model = labels.get("model", "")
        out[model] = out.get(model, 0.0) + value
    return out


def rate(previous: float | None, current: float, seconds: float) -> float | None:
    """Per-second increase of a counter; a counter that went down was reset (a restart), so its
    whole current value is the increase, as Prometheus's rate() treats it."""
    if previous is None or seconds <= 0:
        return None
    increase = current - previous if current >= previous else current
    return increase / seconds


def buckets_by_model(samples: Samples, histogram: str) -> dict[str, Buckets]:
    """Cumulative buckets per model, sorted by `le` (summed over any other label)."""
    acc: dict[str, dict[float, float]] = {}
    for labels, value in samples.get(f"{histogram}_bucket", []):
        le = labels.get("le")
        if le is None:
            continue
        bound = math.inf if le in ("+Inf", "Inf") else float(le)
        per = acc.setdefault(labels.get("model", ""), {})
        per[bound] = per.get(bound, 0.0) + value
    return {m: sorted(b.items()) for m, b in acc.items()}


def bucket_increase(previous: Buckets | None, current: Buckets) -> Buckets:
    """Observations between two scrapes; a reset (any bucket went down) counts from zero."""
    if not previous:
        return current
    before = dict(previous)
    if any(count < before.get(le, 0.0) for le, count in current):
        return current
    return [(le, count - before.get(le, 0.0)) for le, count in current]


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile (0..1) by linear interpolation within the bucket that holds it, as
    Prometheus's histogram_quantile(); None without observations. A quantile in the +Inf bucket
    is the highest finite bound (all that is known)."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within 0..1, got {q}")
    if not buckets or buckets[-1][0] != math.inf:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank and count > lower_count:
            if upper == math.inf:
                return lower_bound
            if upper <= 0:
                return upper
            return lower_bound + (upper - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper, count
    return lower_bound


@dataclass(frozen=True)
class ModelFigures:
    """One model as one service sees it. Rates and `p50_s`/`p99_s` cover the window between two
    scrapes (None: no second scrape, or no request in it); `*_total` and `*_all` since start."""

    requests_total: float = 0.0
    errors_total: float = 0.0
    requests_per_s: float | None = None
    tokens_per_s: float | None = None  # completion tokens
    prompt_tokens_per_s: float | None = None
    p50_s: float | None = None
    p99_s: float | None = None
    p50_s_all: float | None = None
    p99_s_all: float | None = None
    ttft_p50_s_all: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    loaded: bool | None = None
    engine_restarts: float | None = None

    def as_json(self) -> dict[str, object]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _quantiles(buckets: Buckets | None) -> tuple[float | None, float | None]:
    if not buckets:
        return None, None
    return histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)


def model_figures(family: Family, current: Samples, previous: Samples | None = None,
                  seconds: float = 0.0) -> dict[str, ModelFigures]:
    """Every model the family's metrics name in `current`, with rates over `seconds` since
    `previous` when given."""
    requests = by_model(current, family.requests)
    before = by_model(previous, family.requests) if previous is not None else {}
    models = set(requests)
    for gauge in (family.model_loaded, family.waiting, family.running, family.kv_cache_usage):
        if gauge:
            models |= set(by_model(current, gauge))
    models.discard("")
    errors = errors_by_model(current, family.requests)
    durations = buckets_by_model(current, family.request_duration)
    durations_before = (buckets_by_model(previous, family.request_duration)
                        if previous is not None else {})
    ttft = buckets_by_model(current, family.time_to_first_token)

    def counter_rate(name: str | None, model: str) -> float | None:
        if not name or previous is None:
            return None
        return rate(by_model(previous, name).get(model, 0.0), by_model(current, name).get(model, 0.0),
                    seconds)

    def gauge(name: str | None, model: str) -> float | None:
        return by_model(current, name).get(model) if name else None

    out = {}
    for model in sorted(models):
        window = None
        if previous is not None and model in durations:
            window = bucket_increase(durations_before.get(model), durations[model])
        p50, p99 = _quantiles(window)
        p50_all, p99_all = _quantiles(durations.get(model))
        loaded = gauge(family.model_loaded, model)
        restarts = gauge(family.engine_restarts, model)
        out[model] = ModelFigures(
            requests_total=requests.get(model, 0.0),
            errors_total=errors.get(model, 0.0),
            requests_per_s=(rate(before.get(model, 0.0), requests.get(model, 0.0), seconds)
                            if previous is not None else None),
            tokens_per_s=counter_rate(family.completion_tokens, model),
            prompt_tokens_per_s=counter_rate(family.prompt_tokens, model),
            p50_s=p50, p99_s=p99, p50_s_all=p50_all, p99_s_all=p99_all,
            ttft_p50_s_all=histogram_quantile(0.5, ttft[model]) if model in ttft else None,
            running=gauge(family.running, model),
            waiting=gauge(family.waiting, model),
            kv_usage=gauge(family.kv_cache_usage, model),
            loaded=None if loaded is None else loaded >= 1,
            engine_restarts=restarts,
        )
    return out


def families_in(samples: Samples, families: tuple[Family, ...]) -> list[Family]:
    """The exporter families whose request counter or histograms this scrape carries."""
    present = set(samples)
    return [f for f in families
            if f.requests in present or f"{f.request_duration}_bucket" in present
            or any(g in present for g in f.gauges())]


def single_gauge(samples: Samples, name: str | None) -> float | None:
    """A gauge without labels (e.g. the gateway's in-flight requests)."""
    if not name or name not in samples:
        return None
    return sum(v for _, v in samples[name])
