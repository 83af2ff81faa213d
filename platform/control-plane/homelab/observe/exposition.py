"""Prometheus text exposition -> samples: {sample name: [(labels, value), ...]}.

Parsing is prometheus_client's (the reference parser); this module only flattens its families
into what the pure figures in stats.py read.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]


class ExpositionError(ValueError):
    """The body is not Prometheus text format."""


def parse(text: str) -> Samples:
    out: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    except (ValueError, TypeError, IndexError) as exc:  # the parser's ways of saying "not text format"
        raise ExpositionError(f"not Prometheus text format: {exc}") from None
    return out


def declared(text: str) -> set[str]:
    """Every metric name the body declares, with or without samples yet (a labelled metric
    has no sample before its first label set is used, but its # TYPE line is there): counters
    as `x_total`, histograms by base name, the way a query names them."""
    out = set()
    try:
        for family in text_string_to_metric_families(text):
            out.add(f"{family.name}_total" if family.type == "counter" else family.name)
    except (ValueError, TypeError, IndexError) as exc:
        raise ExpositionError(f"not Prometheus text format: {exc}") from None
    return out


def names(samples: Samples) -> set[str]:
    """Metric names as a query names them: `x_total` for counters; `x` for a histogram whose
    samples are `x_bucket`/`x_sum`/`x_count`."""
    out = set()
    for name in samples:
        out.add(name)
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                out.add(name.removesuffix(suffix))
    return out


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
