"""The rich table `homelab top` draws from its rows (formatting only)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from homelab.observe.stats import ModelFigures
from homelab.observe.view import ServiceRow


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def latency(f: ModelFigures) -> tuple[str, str]:
    """p50/p99 over the last window; since start (marked *) when the window had no request."""
    if f.p50_s is not None:
        return _ms(f.p50_s), _ms(f.p99_s)
    if f.p50_s_all is not None:
        return _ms(f.p50_s_all) + "*", _ms(f.p99_s_all) + "*"
    return "-", "-"


def health_text(row: ServiceRow) -> Text:
    if row.healthy:
        return Text("up", style="green")
    if row.healthy is None:
        return Text("-" if row.metrics_error is None else "?", style="dim")
    return Text("down" if row.required else "down (opt-in)",
                style="bold red" if row.required else "yellow")


def render(view: list[ServiceRow], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for col, justify in (("service", "left"), ("model", "left"), ("health", "left"),
                         ("req/s", "right"), ("tok/s", "right"), ("p50", "right"),
                         ("p99", "right"), ("queue", "right"), ("running", "right"),
                         ("KV", "right"), ("requests", "right"), ("note", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in view:
        note = row.health_error or row.metrics_error or ""
        if row.in_flight is not None:
            note = f"in flight {row.in_flight:.0f}" + (f"; {note}" if note else "")
        table.add_row(row.service, "", health_text(row), "", "", "", "", "", "", "", "",
                      Text(note, style="dim"))
        for model, f in row.models.items():
            p50, p99 = latency(f)
            loaded = "" if f.loaded in (None, True) else "not loaded"
            table.add_row("", model, "", _num(f.requests_per_s), _num(f.tokens_per_s), p50, p99,
                          _num(f.waiting, "{:.0f}"), _num(f.running, "{:.0f}"),
                          _num(None if f.kv_usage is None else f.kv_usage * 100, "{:.0f}%"),
                          f"{f.requests_total:.0f}" + (f" ({f.errors_total:.0f} err)"
                                                       if f.errors_total else ""),
                          Text(loaded, style="yellow"))
    return table
