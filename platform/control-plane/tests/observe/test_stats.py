"""The figures `homelab top` prints, from Prometheus text as the services write it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from homelab.observe import names, rows as top_rows, stats
from homelab.observe.collect import Scrape, Sweep
from homelab.observe.exposition import ExpositionError, parse
from homelab.runtime.probe import Result

REAL_REPO = Path(__file__).resolve().parents[4]

INF = math.inf


def ov_text(requests: int, tokens: int, buckets: dict[str, int], waiting: int = 0,
            kv: float = 0.0, errors: int = 0) -> str:
    """ov-server's exposition for one model (jerry-tiny), as prometheus_client writes it."""
    lines = [
        "# HELP ov_server_requests_total Requests.", "# TYPE ov_server_requests_total counter",
        f'ov_server_requests_total{{model="jerry-tiny",status="200"}} {requests}',
        f'ov_server_requests_total{{model="jerry-tiny",status="500"}} {errors}',
        "# TYPE ov_server_completion_tokens_total counter",
        f'ov_server_completion_tokens_total{{model="jerry-tiny"}} {tokens}',
        "# TYPE ov_server_request_duration_seconds histogram",
    ]
    lines += [f'ov_server_request_duration_seconds_bucket{{le="{le}",model="jerry-tiny"}} {n}'
              for le, n in buckets.items()]
    total = buckets["+Inf"]
    lines += [f'ov_server_request_duration_seconds_count{{model="jerry-tiny"}} {total}',
              f'ov_server_request_duration_seconds_sum{{model="jerry-tiny"}} {total * 0.1}',
              "# TYPE ov_server_waiting_sequences gauge",
              f'ov_server_waiting_sequences{{model="jerry-tiny"}} {waiting}',
              "# TYPE ov_server_kv_cache_usage_ratio gauge",
              f'ov_server_kv_cache_usage_ratio{{model="jerry-tiny"}} {kv}',
              "# TYPE ov_server_model_loaded gauge",
              'ov_server_model_loaded{model="jerry-tiny"} 1']
    return "\n".join(lines) + "\n"


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 10 observations: 4 <= 0.1 s, 4 more <= 0.5 s, 2 more <= 1 s.
    buckets = [(0.1, 4.0), (0.5, 8.0), (1.0, 10.0), (INF, 10.0)]
    assert stats.histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * (5 - 4) / 4)
    assert stats.histogram_quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * (9.9 - 8) / 2)
    assert stats.histogram_quantile(0.2, buckets) == pytest.approx(0.05)  # first bucket from 0


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert stats.histogram_quantile(0.99, [(0.1, 1.0), (1.0, 2.0), (INF, 10.0)]) == 1.0


def test_quantile_without_observations_is_none() -> None:
    assert stats.histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert stats.histogram_quantile(0.5, []) is None
    with pytest.raises(ValueError, match="within 0..1"):
        stats.histogram_quantile(1.5, [(INF, 1.0)])


def test_rate_treats_a_counter_that_went_down_as_a_restart() -> None:
    assert stats.rate(10.0, 30.0, 2.0) == 10.0
    assert stats.rate(50.0, 6.0, 2.0) == 3.0  # reset: the new value is the increase
    assert stats.rate(None, 6.0, 2.0) is None


def test_window_buckets_are_the_difference_unless_reset() -> None:
    before = [(0.1, 4.0), (INF, 5.0)]
    assert stats.bucket_increase(before, [(0.1, 6.0), (INF, 9.0)]) == [(0.1, 2.0), (INF, 4.0)]
    assert stats.bucket_increase(before, [(0.1, 1.0), (INF, 1.0)]) == [(0.1, 1.0), (INF, 1.0)]


def test_model_figures_over_a_window() -> None:
    b1 = {"0.05": 2, "0.1": 4, "0.5": 4, "+Inf": 4}
    b2 = {"0.05": 2, "0.1": 4, "0.5": 14, "+Inf": 14}  # 10 new requests, all in (0.1, 0.5]
    first = parse(ov_text(4, 40, b1))
    second = parse(ov_text(14, 240, b2, waiting=3, kv=0.25, errors=1))
    fig = stats.model_figures(names.OV_SERVER, second, first, 2.0)["jerry-tiny"]
    assert fig.requests_total == 15 and fig.errors_total == 1
    assert fig.requests_per_s == pytest.approx(5.5)  # (14 + 1 - 4) / 2
    assert fig.tokens_per_s == pytest.approx(100.0)
    assert fig.p50_s == pytest.approx(0.1 + 0.4 * 5 / 10)  # the window's requests only
    assert fig.p50_s_all == pytest.approx(0.1 + 0.4 * (7 - 4) / 10)  # since start
    assert (fig.waiting, fig.kv_usage, fig.loaded) == (3, 0.25, True)


def test_model_figures_from_one_scrape_have_no_rates() -> None:
    fig = stats.model_figures(names.OV_SERVER, parse(ov_text(4, 40, {"0.1": 4, "+Inf": 4})))
    assert fig["jerry-tiny"].requests_per_s is None and fig["jerry-tiny"].p50_s is None
    assert fig["jerry-tiny"].p50_s_all == pytest.approx(0.05)


def test_not_prometheus_text_is_a_clear_error() -> None:
    with pytest.raises(ExpositionError, match="not Prometheus text format"):
        parse("<html>not metrics</html>\n{")


def _result(service: str, ok: bool) -> Result:
    return Result(service, f"http://x/{service}", ok, 200 if ok else None, 1.0,
                  None if ok else "connection refused", True, "local")


def test_view_rows_and_mesh_down() -> None:
    b = {"0.1": 1, "+Inf": 1}
    up = Sweep([_result("ov-server", True), _result("web-fetch", False)],
               {"ov-server": Scrape("ov-server", "http://x/metrics", parse(ov_text(1, 8, b)), None, 1.0)})
    rows = top_rows.rows(up)
    assert [(r.service, r.healthy) for r in rows] == [("ov-server", True), ("web-fetch", False)]
    assert list(rows[0].models) == ["jerry-tiny"]
    assert top_rows.as_json(rows, None)["down"] == ["web-fetch"]
    assert not top_rows.mesh_down(rows)
    down = Sweep([_result("ov-server", False)],
                 {"ov-server": Scrape("ov-server", "http://x/metrics", None, "connection refused", 2.0)})
    assert top_rows.mesh_down(top_rows.rows(down, up))


def test_table_marks_latency_since_start_and_shows_down_services() -> None:
    from rich.console import Console

    from homelab.observe import table

    b = {"0.1": 2, "+Inf": 2}
    sweep = Sweep([_result("ov-server", True), _result("web-fetch", False)],
                  {"ov-server": Scrape("ov-server", "http://x/metrics",
                                       parse(ov_text(2, 8, b, waiting=2, kv=0.5)), None, 1.0)})
    console = Console(record=True, width=200)
    console.print(table.render(top_rows.rows(sweep), "t"))
    text = console.export_text()
    line = next(l for l in text.splitlines() if "jerry-tiny" in l)
    assert "50ms*" in line and "50%" in line and " 2 " in line  # p50 since start, KV, queue
    assert "down" in next(l for l in text.splitlines() if "web-fetch" in l)
    assert "web-fetch: connection refused" in text.splitlines()  # the why, below the table


def test_table_fits_80_columns_with_the_meshs_own_names() -> None:
    """Every service and model name of this repository's mesh, with wide figures, in an 80-column
    terminal: no column is dropped and no figure is cut (rich drops or ellipsizes what does not fit)."""
    from rich.console import Console

    from meshkit.view import load_view

    from homelab.observe import table
    from homelab.observe.rows import ServiceRow
    from homelab.observe.stats import ModelFigures

    mesh = load_view(REAL_REPO / "mesh" / "view.json")
    public = {r.name: r.service for r in mesh.routes}
    wide = ModelFigures(requests_total=99999, errors_total=999, requests_per_s=99.9, tokens_per_s=9999,
                        p50_s=0.999, p99_s=99.9, running=99, waiting=999, kv_usage=1.0, loaded=False)
    # The gateway row lists every public name (its metrics do), a backend its own models.
    models = {s.name: [n for n, owner in public.items()
                       if s.name == mesh.gateway_service or owner == s.name] for s in mesh.services.values()}
    view = [ServiceRow(s.name, "local", False, True, None, "http://x/metrics", None, 99,
                       {m: wide for m in models[s.name]}) for s in mesh.services.values()]
    assert max(len(m) for ms in models.values() for m in ms) >= len("jerry-tiny-moa")
    console = Console(record=True, width=80)
    console.print(table.render(view, "homelab top"))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if line.startswith("name"))
    assert header.split() == [c for c, _, _ in table.COLUMNS]
    text = "\n".join(lines)
    assert "…" not in text
    for s in mesh.services.values():
        assert any(line.startswith(s.name + " ") for line in lines), s.name
        for m in models[s.name]:
            row = next(line for line in lines if line.startswith(table.MODEL_INDENT + m + " "))
            assert row.split()[1:] == ["unload", "99.9", "9999", "999ms", "99.9s", "99", "999",
                                       "100%", "99999", "999"], row
